"""Monthly sales report: reads order rows, aggregates them and prints a summary.

The imports and helpers at the top are used again far below, which is what Attention Lens shows.
"""

from __future__ import annotations

import csv
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

CURRENCY = "EUR"
DATE_FORMAT = "%Y-%m-%d"
TOP_N = 5


@dataclass(frozen=True)
class Order:
    order_id: str
    day: date
    customer: str
    sku: str
    quantity: int
    unit_price: float

    @property
    def total(self) -> float:
        return round(self.quantity * self.unit_price, 2)


@dataclass
class MonthSummary:
    month: str
    orders: list[Order] = field(default_factory=list)

    def revenue(self) -> float:
        return round(sum(order.total for order in self.orders), 2)

    def customers(self) -> set[str]:
        return {order.customer for order in self.orders}


def parse_day(text: str) -> date:
    return datetime.strptime(text.strip(), DATE_FORMAT).date()


def month_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def format_amount(amount: float) -> str:
    return f"{amount:,.2f} {CURRENCY}"


def read_orders(path: Path) -> list[Order]:
    orders: list[Order] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            orders.append(
                Order(
                    order_id=row["order_id"],
                    day=parse_day(row["date"]),
                    customer=row["customer"],
                    sku=row["sku"],
                    quantity=int(row["quantity"]),
                    unit_price=float(row["unit_price"]),
                )
            )
    return orders


def group_by_month(orders: list[Order]) -> dict[str, MonthSummary]:
    months: dict[str, MonthSummary] = {}
    for order in orders:
        key = month_key(order.day)
        months.setdefault(key, MonthSummary(month=key)).orders.append(order)
    return dict(sorted(months.items()))


def best_sellers(orders: list[Order], top: int = TOP_N) -> list[tuple[str, int]]:
    counts: Counter[str] = Counter()
    for order in orders:
        counts[order.sku] += order.quantity
    return counts.most_common(top)


def revenue_by_customer(orders: list[Order]) -> dict[str, float]:
    totals: defaultdict[str, float] = defaultdict(float)
    for order in orders:
        totals[order.customer] += order.total
    return {customer: round(total, 2) for customer, total in totals.items()}


def order_size_statistics(orders: list[Order]) -> dict[str, float]:
    totals = [order.total for order in orders]
    if len(totals) < 2:
        return {"mean": totals[0] if totals else 0.0, "median": totals[0] if totals else 0.0, "stdev": 0.0}
    return {
        "mean": round(statistics.mean(totals), 2),
        "median": round(statistics.median(totals), 2),
        "stdev": round(statistics.stdev(totals), 2),
    }


def growth(previous: MonthSummary | None, current: MonthSummary) -> str:
    if previous is None or previous.revenue() == 0:
        return "n/a"
    change = (current.revenue() - previous.revenue()) / previous.revenue()
    return f"{change:+.1%}"


def returning_customers(months: dict[str, MonthSummary]) -> dict[str, int]:
    seen: set[str] = set()
    returning: dict[str, int] = {}
    for key, summary in months.items():
        customers = summary.customers()
        returning[key] = len(customers & seen)
        seen |= customers
    return returning


def render_report(orders: list[Order]) -> str:
    months = group_by_month(orders)
    lines = [f"Sales report ({len(orders)} orders, {CURRENCY})", ""]

    previous: MonthSummary | None = None
    returning = returning_customers(months)
    for key, summary in months.items():
        lines.append(
            f"{key}  revenue {format_amount(summary.revenue()):>16}  "
            f"growth {growth(previous, summary):>7}  "
            f"customers {len(summary.customers()):>3} ({returning[key]} returning)"
        )
        previous = summary

    lines += ["", f"Top {TOP_N} products by quantity:"]
    for sku, quantity in best_sellers(orders):
        lines.append(f"  {sku:<8} {quantity:>5}")

    lines += ["", "Revenue by customer:"]
    for customer, total in sorted(revenue_by_customer(orders).items(), key=lambda item: -item[1]):
        lines.append(f"  {customer:<20} {format_amount(total):>16}")

    stats = order_size_statistics(orders)
    lines += [
        "",
        "Order size: "
        f"mean {format_amount(stats['mean'])}, "
        f"median {format_amount(stats['median'])}, "
        f"stdev {format_amount(stats['stdev'])}",
    ]
    return "\n".join(lines)


def write_report(orders: list[Order], folder: Path) -> Path:
    target = folder / f"sales-report-{date.today().strftime(DATE_FORMAT)}.txt"
    target.write_text(render_report(orders) + "\n", encoding="utf-8")
    return target


def main() -> None:
    data = Path(__file__).resolve().parent.parent / "data"
    orders = read_orders(data / "orders.csv")
    print(render_report(orders))


if __name__ == "__main__":
    main()
