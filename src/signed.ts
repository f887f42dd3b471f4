// A signed figure for a table: "+" or "−" (the minus sign), and "+0.00" for anything that rounds to zero, so a
// difference of −1e-9 does not read as a loss.
export function signed(x: number, digits = 4): string {
  const text = Math.abs(x).toFixed(digits);
  const zero = Number(text) === 0;
  return `${x >= 0 || zero ? "+" : "−"}${text}`;
}
