// How `earshot transcribe` shows its progress, on stderr (stdout may carry the transcripts): a bar per
// file on a terminal (cli-progress), plain lines elsewhere (a log file, CI), where bars redrawn in place
// would be noise: a line when a file starts decoding, one each time another tenth of its audio is
// decoded, one when it ends.
import cliProgress from 'cli-progress';

export interface FileProgress {
  /** The server started decoding the file: its audio is this long. */
  decoding(durationSeconds: number): void;
  /** The audio decoded so far, in seconds (the end of the last segment). */
  decoded(seconds: number): void;
  done(summary: string): void;
  failed(reason: string): void;
}

export interface ProgressDisplay {
  file(name: string): FileProgress;
  /** Ends the display: bars are left as they are drawn, and the cursor shown again. */
  stop(): void;
}

/** 9.5 s, 1:05, 1:02:03. */
export function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const whole = Math.round(seconds);
  const [h, m, s] = [Math.floor(whole / 3600), Math.floor(whole / 60) % 60, whole % 60];
  const mmss = `${String(m).padStart(h > 0 ? 2 : 1, '0')}:${String(s).padStart(2, '0')}`;
  return h > 0 ? `${h}:${mmss}` : mmss;
}

/**
 * Time left for a file, from its decoding speed so far: the audio left at the rate the audio decoded
 * took (since decoding started). Unknown until a first segment is in.
 */
class DecodeClock {
  private readonly startedAt = performance.now();

  constructor(readonly duration: number) {}

  share(decoded: number): number {
    return this.duration > 0 ? Math.min(1, decoded / this.duration) : 0;
  }

  eta(decoded: number): string {
    if (decoded <= 0) return 'ETA …';
    const elapsed = (performance.now() - this.startedAt) / 1000;
    const left = (elapsed / decoded) * Math.max(0, this.duration - decoded);
    return `ETA ${formatSeconds(left)}`;
  }
}

/** cli-progress's bars, one per file, redrawn in place. */
class Bars implements ProgressDisplay {
  private readonly bars: cliProgress.MultiBar;

  constructor(
    private readonly nameWidth: number,
    stream: NodeJS.WriteStream,
  ) {
    this.bars = new cliProgress.MultiBar(
      {
        stream,
        format: ' {name} {bar} {percentage}% | {decoded} of {audio} | {status}',
        barsize: 24,
        hideCursor: true,
        autopadding: true,
        // Percent and time are computed here, from the audio decoded: cli-progress's own ETA would
        // count the upload and the wait in the queue as if they were decoding.
        etaBuffer: 1,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  file(name: string): FileProgress {
    const bar = this.bars.create(1, 0, {
      name: (name.length > this.nameWidth ? `…${name.slice(-(this.nameWidth - 1))}` : name).padEnd(this.nameWidth),
      decoded: '-',
      audio: '-',
      status: 'sending',
    });
    let clock: DecodeClock | undefined;
    return {
      decoding: (duration) => {
        clock = new DecodeClock(duration);
        bar.setTotal(Math.max(duration, Number.EPSILON));
        bar.update(0, { decoded: formatSeconds(0), audio: formatSeconds(duration), status: clock.eta(0) });
      },
      decoded: (seconds) => {
        if (!clock) return;
        bar.update(Math.min(seconds, clock.duration), { decoded: formatSeconds(seconds), status: clock.eta(seconds) });
      },
      done: (summary) =>
        bar.update(bar.getTotal(), { decoded: clock ? formatSeconds(clock.duration) : '-', status: summary }),
      failed: (reason) => bar.update({ status: `failed: ${reason}` }),
    };
  }

  stop(): void {
    this.bars.stop();
  }
}

/** A line per step, for a stream that is not a terminal. */
class Lines implements ProgressDisplay {
  constructor(private readonly stream: NodeJS.WritableStream) {}

  private line(text: string): void {
    this.stream.write(`${text}\n`);
  }

  file(name: string): FileProgress {
    let clock: DecodeClock | undefined;
    let lastTenth = -1;
    return {
      decoding: (duration) => {
        clock = new DecodeClock(duration);
        this.line(`${name}: decoding ${formatSeconds(duration)} of audio`);
      },
      decoded: (seconds) => {
        if (!clock) return;
        const share = clock.share(seconds);
        const tenth = Math.floor(share * 10);
        if (tenth <= lastTenth) return;
        lastTenth = tenth;
        const percent = Math.floor(share * 100);
        this.line(
          `${name}: ${percent}% (${formatSeconds(seconds)} of ${formatSeconds(clock.duration)}) ${clock.eta(seconds)}`,
        );
      },
      done: (summary) => this.line(`${name}: 100% ${summary}`),
      failed: (reason) => this.line(`${name}: failed: ${reason}`),
    };
  }

  stop(): void {}
}

/** Bars on a terminal, lines elsewhere. */
export function progressDisplay(
  names: readonly string[],
  stream: NodeJS.WriteStream = process.stderr,
): ProgressDisplay {
  if (!stream.isTTY) return new Lines(stream);
  const nameWidth = Math.min(40, Math.max(...names.map((name) => name.length)));
  return new Bars(nameWidth, stream);
}
