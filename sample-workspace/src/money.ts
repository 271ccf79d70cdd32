// Amounts of money kept as integer cents, so that sums never drift.

export type Currency = 'EUR' | 'USD' | 'GBP';

export interface Money {
  readonly cents: number;
  readonly currency: Currency;
}

export function money(amount: number, currency: Currency): Money {
  return { cents: Math.round(amount * 100), currency };
}

export function zeroMoney(currency: Currency): Money {
  return { cents: 0, currency };
}

export function addMoney(a: Money, b: Money): Money {
  if (a.currency !== b.currency) {
    throw new Error(`cannot add ${b.currency} to ${a.currency}`);
  }
  return { cents: a.cents + b.cents, currency: a.currency };
}

export function multiplyMoney(value: Money, factor: number): Money {
  return { cents: Math.round(value.cents * factor), currency: value.currency };
}

export function formatMoney(value: Money): string {
  const symbol = value.currency === 'EUR' ? '€' : value.currency === 'GBP' ? '£' : '$';
  const sign = value.cents < 0 ? '-' : '';
  const whole = Math.floor(Math.abs(value.cents) / 100);
  const fraction = String(Math.abs(value.cents) % 100).padStart(2, '0');
  return `${sign}${symbol}${whole.toLocaleString('en')}.${fraction}`;
}
