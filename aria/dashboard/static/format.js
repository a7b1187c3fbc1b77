// Numbers for people: sizes, rates, durations.

export function bytes(n) {
  if (n === null || n === undefined) return "?";
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = "B";
  for (const next of units) {
    value /= 1024;
    unit = next;
    if (value < 1024) break;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${unit}`;
}

export const rate = (bps) => (bps === null || bps === undefined ? "–" : `${bytes(Math.round(bps))}/s`);

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  if (seconds < 1) return "<1 s";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function number(value, digits = 1) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  return Math.abs(value) >= 100 ? value.toFixed(0) : value.toFixed(digits);
}

export const percent = (fraction) => `${Math.round(fraction * 100)}%`;

export const shortId = (id) => (id && id.length > 14 ? `${id.slice(0, 6)}…${id.slice(-6)}` : id);
