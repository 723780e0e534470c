/**
 * When the widget's session token expires: "in 29 minutes (14:05:09)", updated every second.
 *
 * A few lines instead of rx.moment: moment.js is a 68 KB module that the page would load
 * and run exactly when the first token arrives, which is when the widget mounts. Nor Intl:
 * constructing an Intl.RelativeTimeFormat costs ~10 ms of the page's start-up in Chromium.
 * The app's text is English, as moment's default was.
 */
import { useEffect, useState } from "react";

const TICK_MS = 1000;
// [unit, its length in seconds, the distance in seconds from which it is used], largest
// first; the thresholds are moment's fromNow ones (45 s, 45 min, 22 h).
const UNITS = [
  ["day", 86400, 79200],
  ["hour", 3600, 2700],
  ["minute", 60, 45],
  ["second", 1, 0],
];

const pad = (number) => String(number).padStart(2, "0");

/** "in 29 minutes", "1 second ago": the distance from `now` to `at` (ms), rounded. */
export function fromNow(at, now) {
  const seconds = (at - now) / 1000;
  const distance = Math.abs(seconds);
  const [unit, size] = UNITS.find(([, , from]) => distance >= from);
  const count = Math.round(distance / size);
  const amount = `${count} ${unit}${count === 1 ? "" : "s"}`;
  return seconds >= 0 ? `in ${amount}` : `${amount} ago`;
}

/** The local wall-clock time of `at` (ms), as HH:MM:SS. */
export function clockTime(at) {
  const date = new Date(at);
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

export function TokenExpiry({ expiresAt, ...rest }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), TICK_MS);
    return () => clearInterval(timer);
  }, []);
  const at = Date.parse(expiresAt ?? "");
  if (Number.isNaN(at)) return <span {...rest}>—</span>;
  return (
    <span {...rest} title={new Date(at).toISOString()}>
      {fromNow(at, now)} ({clockTime(at)})
    </span>
  );
}
