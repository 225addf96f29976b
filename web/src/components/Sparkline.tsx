// A small line chart without axes, for a trend that people would rather glance at than read.
// Gaps (null values) break the line; the last value is marked with a dot.

export function Sparkline({
  values,
  width = 120,
  height = 28,
  label,
  tone = "neutral",
}: {
  values: (number | null | undefined)[];
  width?: number;
  height?: number;
  label: string;
  tone?: "neutral" | "good" | "bad" | "warn";
}) {
  const numbers = values.filter((v): v is number => typeof v === "number" && Number.isFinite(v));
  if (numbers.length < 2) {
    return (
      <span className="sparkline-empty muted" aria-label={`${label}: not enough samples yet`}>
        —
      </span>
    );
  }
  const max = Math.max(...numbers);
  const min = Math.min(0, ...numbers);
  const span = max - min || 1;
  const step = values.length > 1 ? (width - 4) / (values.length - 1) : 0;
  const y = (v: number) => 2 + (height - 4) * (1 - (v - min) / span);
  const segments: string[] = [];
  let current = "";
  values.forEach((v, i) => {
    if (typeof v !== "number" || !Number.isFinite(v)) {
      if (current) segments.push(current);
      current = "";
      return;
    }
    current += `${current ? "L" : "M"}${(2 + i * step).toFixed(1)},${y(v).toFixed(1)}`;
  });
  if (current) segments.push(current);
  let lastIndex = values.length - 1;
  while (lastIndex >= 0 && typeof values[lastIndex] !== "number") lastIndex -= 1;
  const last = values[lastIndex] as number;
  return (
    <svg
      className={`sparkline sparkline-${tone}`}
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={`${label}: latest ${last}, highest ${max}`}
    >
      {segments.map((d, i) => (
        <path key={i} d={d} fill="none" strokeWidth="1.6" strokeLinejoin="round" strokeLinecap="round" />
      ))}
      <circle cx={2 + lastIndex * step} cy={y(last)} r="2.2" />
    </svg>
  );
}
