/**
 * Progress on stderr for long work, only when stderr is a terminal: one line,
 * redrawn a few times a second, erased when the work ends.
 */

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

export class ProgressLine {
  private timer?: NodeJS.Timeout;
  private readonly started = Date.now();
  private readonly enabled: boolean;

  constructor(private readonly render: (elapsedSeconds: number) => string) {
    this.enabled = !!process.stderr.isTTY && !process.env.OBNAM_NO_PROGRESS;
  }

  start(): this {
    if (this.enabled) {
      this.timer = setInterval(() => this.draw(), 250);
      this.timer.unref();
    }
    return this;
  }

  private draw(): void {
    const line = this.render((Date.now() - this.started) / 1000);
    const width = process.stderr.columns || 80;
    process.stderr.write(`\r${line.slice(0, width - 1)}\x1b[K`);
  }

  stop(): void {
    if (this.timer) {
      clearInterval(this.timer);
      process.stderr.write('\r\x1b[K');
    }
  }
}

export function rate(bytes: number, seconds: number): string {
  return `${formatBytes(seconds > 0 ? bytes / seconds : 0)}/s`;
}
