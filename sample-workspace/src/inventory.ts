// A small warehouse inventory: stock levels, reservations and a restocking report.
// The imports and helpers at the top are used again far below, which is what Attention Lens shows.
import { CsvRow, parseCsv } from './csv';
import { Currency, Money, addMoney, formatMoney, money, multiplyMoney, zeroMoney } from './money';

export const DEFAULT_CURRENCY: Currency = 'EUR';
export const LOW_STOCK_THRESHOLD = 5;

export interface Product {
  readonly sku: string;
  readonly name: string;
  readonly unitPrice: Money;
  readonly supplier: string;
  readonly leadTimeDays: number;
}

export interface StockLine {
  readonly product: Product;
  onHand: number;
  reserved: number;
}

export interface Reservation {
  readonly id: number;
  readonly sku: string;
  readonly quantity: number;
  readonly customer: string;
}

export class InventoryError extends Error {
  constructor(
    message: string,
    readonly sku: string,
  ) {
    super(`${sku}: ${message}`);
  }
}

function available(line: StockLine): number {
  return line.onHand - line.reserved;
}

function isLowOnStock(line: StockLine): boolean {
  return available(line) < LOW_STOCK_THRESHOLD;
}

function parseProduct(row: CsvRow): Product {
  return {
    sku: row.sku,
    name: row.name,
    unitPrice: money(Number(row.unit_price), DEFAULT_CURRENCY),
    supplier: row.supplier,
    leadTimeDays: Number(row.lead_time_days),
  };
}

export class Inventory {
  private readonly lines = new Map<string, StockLine>();
  private readonly reservations: Reservation[] = [];
  private nextReservationId = 1;

  addProduct(product: Product, onHand: number): void {
    if (this.lines.has(product.sku)) {
      throw new InventoryError('already in the inventory', product.sku);
    }
    this.lines.set(product.sku, { product, onHand, reserved: 0 });
  }

  line(sku: string): StockLine {
    const line = this.lines.get(sku);
    if (!line) {
      throw new InventoryError('no such product', sku);
    }
    return line;
  }

  receive(sku: string, quantity: number): void {
    const line = this.line(sku);
    line.onHand += quantity;
  }

  reserve(sku: string, quantity: number, customer: string): Reservation {
    const line = this.line(sku);
    if (available(line) < quantity) {
      throw new InventoryError(`only ${available(line)} available, ${quantity} requested`, sku);
    }
    line.reserved += quantity;
    const reservation = { id: this.nextReservationId++, sku, quantity, customer };
    this.reservations.push(reservation);
    return reservation;
  }

  release(reservationId: number): void {
    const index = this.reservations.findIndex((reservation) => reservation.id === reservationId);
    if (index === -1) {
      return;
    }
    const [reservation] = this.reservations.splice(index, 1);
    this.line(reservation.sku).reserved -= reservation.quantity;
  }

  ship(reservationId: number): Money {
    const reservation = this.reservations.find((candidate) => candidate.id === reservationId);
    if (!reservation) {
      throw new InventoryError(`reservation ${reservationId} does not exist`, '?');
    }
    const line = this.line(reservation.sku);
    line.onHand -= reservation.quantity;
    line.reserved -= reservation.quantity;
    this.reservations.splice(this.reservations.indexOf(reservation), 1);
    return multiplyMoney(line.product.unitPrice, reservation.quantity);
  }

  stockLines(): StockLine[] {
    return [...this.lines.values()].sort((a, b) => a.product.sku.localeCompare(b.product.sku));
  }

  openReservations(customer?: string): Reservation[] {
    return this.reservations.filter((reservation) => customer === undefined || reservation.customer === customer);
  }
}

/** Builds an inventory from the text of data/products.csv. */
export function loadInventory(productsCsv: string): Inventory {
  const inventory = new Inventory();
  for (const row of parseCsv(productsCsv)) {
    inventory.addProduct(parseProduct(row), Number(row.on_hand || 0));
  }
  return inventory;
}

export function stockValue(inventory: Inventory): Money {
  let total = zeroMoney(DEFAULT_CURRENCY);
  for (const line of inventory.stockLines()) {
    total = addMoney(total, multiplyMoney(line.product.unitPrice, line.onHand));
  }
  return total;
}

export function reservedValue(inventory: Inventory, customer: string): Money {
  return inventory
    .openReservations(customer)
    .map((reservation) => multiplyMoney(inventory.line(reservation.sku).product.unitPrice, reservation.quantity))
    .reduce(addMoney, zeroMoney(DEFAULT_CURRENCY));
}

export interface RestockOrder {
  readonly supplier: string;
  readonly lines: { sku: string; quantity: number; cost: Money }[];
  readonly total: Money;
  readonly arrivesInDays: number;
}

export function planRestocking(inventory: Inventory, targetLevel = LOW_STOCK_THRESHOLD * 4): RestockOrder[] {
  const bySupplier = new Map<string, StockLine[]>();
  for (const line of inventory.stockLines()) {
    if (!isLowOnStock(line)) {
      continue;
    }
    const group = bySupplier.get(line.product.supplier) ?? [];
    group.push(line);
    bySupplier.set(line.product.supplier, group);
  }

  const orders: RestockOrder[] = [];
  for (const [supplier, lines] of bySupplier) {
    const orderLines = lines.map((line) => {
      const quantity = targetLevel - available(line);
      return { sku: line.product.sku, quantity, cost: multiplyMoney(line.product.unitPrice, quantity) };
    });
    orders.push({
      supplier,
      lines: orderLines,
      total: orderLines.map((line) => line.cost).reduce(addMoney, zeroMoney(DEFAULT_CURRENCY)),
      arrivesInDays: Math.max(...lines.map((line) => line.product.leadTimeDays)),
    });
  }
  return orders.sort((a, b) => b.total.cents - a.total.cents);
}

export function restockingReport(inventory: Inventory): string {
  const rows: string[] = [`Stock value: ${formatMoney(stockValue(inventory))}`, ''];
  for (const line of inventory.stockLines()) {
    const flag = isLowOnStock(line) ? '  LOW' : '';
    rows.push(`${line.product.sku.padEnd(8)} ${line.product.name.padEnd(24)} ${String(available(line)).padStart(4)}${flag}`);
  }
  for (const order of planRestocking(inventory)) {
    rows.push('', `Order from ${order.supplier} (arrives in ${order.arrivesInDays} days): ${formatMoney(order.total)}`);
    for (const line of order.lines) {
      rows.push(`  ${line.sku.padEnd(8)} x${String(line.quantity).padStart(3)}  ${formatMoney(line.cost)}`);
    }
  }
  return rows.join('\n');
}

export function customerStatement(inventory: Inventory, customer: string): string {
  const rows = inventory.openReservations(customer).map((reservation) => {
    const line = inventory.line(reservation.sku);
    const cost = multiplyMoney(line.product.unitPrice, reservation.quantity);
    return `#${reservation.id}  ${line.product.name.padEnd(24)} x${reservation.quantity}  ${formatMoney(cost)}`;
  });
  rows.push(`Total reserved for ${customer}: ${formatMoney(reservedValue(inventory, customer))}`);
  return rows.join('\n');
}
