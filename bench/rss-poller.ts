// Polls another process's memory (/proc/PID/status) every 50 ms and keeps the peaks of its anonymous
// (private) and file-backed resident memory, which VmHWM lumps together: memory-mapped weights are page
// cache the kernel can reclaim, anonymous memory is not. Writes {anon, file, hwm} in bytes to OUT.
import fs from 'node:fs';

const [pid, out] = process.argv.slice(2);
const peak = { anonBytes: 0, fileBytes: 0, hwmBytes: 0 };
const kb = (s: string, key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(s)?.[1] ?? 0) * 1024;
const tick = () => {
  let s: string;
  try {
    s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    process.exit(0); // the process ended
  }
  peak.anonBytes = Math.max(peak.anonBytes, kb(s, 'RssAnon'));
  peak.fileBytes = Math.max(peak.fileBytes, kb(s, 'RssFile'));
  peak.hwmBytes = Math.max(peak.hwmBytes, kb(s, 'VmHWM'));
  fs.writeFileSync(out, JSON.stringify(peak));
};
setInterval(tick, 50);
tick();
