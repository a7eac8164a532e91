// One realtime transcription session: client events in, audio through the VAD into turns, turns to the
// engine as live jobs, server events out. The protocol's shapes live in protocol.ts; this file is the
// behaviour: when a turn starts and ends, when it is decoded, which words are sent when.
import { rm, writeFile } from 'node:fs/promises';
import type { FastifyBaseLogger } from 'fastify';
import { ApiError } from '../api-errors.ts';
import type { Engine, ModelRegistry, ResolvedModel, Transcript, TranscribeOptions } from '../engine/index.ts';
import type { Metrics } from '../metrics.ts';
import { toApiError } from '../server/error-translation.ts';
import { AudioBuffer } from './audio-buffer.ts';
import { AudioInput, encodeWav16k, InvalidAudioError, SAMPLE_RATE } from './audio.ts';
import * as protocol from './protocol.ts';
import type { Dialect, SessionConfig, SessionFacts } from './protocol.ts';
import { StableText, wordProbabilities } from './stability.ts';
import { TurnDetector, VAD_CHUNK_SAMPLES, type SileroVad, type TurnEvent, type VadStream } from './vad.ts';

export interface RealtimeLimits {
  maxSessionSeconds: number;
  idleSeconds: number;
  maxTurnSeconds: number;
}

export interface SessionDependencies {
  engine: Engine;
  registry: ModelRegistry;
  /** The process's VAD model (loaded once, at the first session). */
  vad(): Promise<SileroVad>;
  /** Where the turns' audio is written for the workers (the upload directory). */
  newFilePath(): string;
  defaultModel: string;
  /** StableText's rule for a turn's first words (EARSHOT_REALTIME_FIRST_WORDS_MIN_PROBABILITY; 0: off). */
  firstWordsMinProbability?: number;
  limits: RealtimeLimits;
  metrics?: Metrics | undefined;
  log: FastifyBaseLogger;
}

/** How the session talks to its socket. */
export interface SessionSocket {
  send(event: object): void;
  close(code: number, reason: string): void;
}

// A partial decode of the growing turn about once a second; every 0.3 s while nothing is sent yet, so
// the first words come quickly (they need two partials that agree, and a word after them).
const FIRST_PARTIAL_SECONDS = 0.5;
const PARTIAL_INTERVAL_SECONDS = 1;
const FIRST_PARTIALS_INTERVAL_SECONDS = 0.3;
// A fitted encoder window is at most 30 s with its padding (the worker's rule).
const FIT_WINDOW_MAX_SECONDS = 28;
// OpenAI refuses to commit less than 100 ms of audio.
const MIN_COMMIT_SECONDS = 0.1;
// Audio kept before a turn while nobody speaks: the prefix padding needs at most this much.
const KEEP_BEFORE_TURN_SECONDS = 2;

const samples = (seconds: number) => Math.round(seconds * SAMPLE_RATE);
const milliseconds = (index: number) => Math.round((index * 1000) / SAMPLE_RATE);

interface Turn {
  itemId: string;
  /** Session sample index where the turn's audio begins (the VAD's start, with its padding). */
  start: number;
  stable: StableText;
  /** End (session index) of the audio the last partial decode was given. */
  partialEnd: number;
  partialsDone: number;
  partial: AbortController | undefined;
  stoppedAt?: number;
  /** Cleared by the client (input_audio_buffer.clear) before it was committed. */
  cleared?: boolean;
}

export class TranscriptionSession {
  readonly id: string;
  private config: SessionConfig;
  private dialect: Dialect;
  private model: ResolvedModel | undefined;
  /** Created when the session starts (the resampler loads asynchronously), again when the format changes. */
  private input: AudioInput | undefined;
  private readonly buffer = new AudioBuffer();
  private vad: SileroVad | undefined;
  private vadStream: VadStream | undefined;
  private detector: TurnDetector | undefined;
  /** Session index where the VAD stream began, and the chunks it has judged since. */
  private vadOrigin = 0;
  private vadChunks = 0;
  private turn: Turn | undefined;
  /** The last committed item, for `previous_item_id`. */
  private lastItemId: string | null = null;
  /** Client events are handled one at a time, in order (VAD and file writes are asynchronous). */
  private queue: Promise<void> = Promise.resolve();
  /** Final decodes run one at a time per session, so turns complete in order. */
  private finals: Promise<void> = Promise.resolve();
  private pendingFinals = 0;
  private readonly jobs = new AbortController();
  private readonly files = new Set<string>();
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly sessionTimer: NodeJS.Timeout;
  private readonly openedAt = performance.now();
  /** When the session ends at the latest (EARSHOT_REALTIME_MAX_SESSION_SECONDS), in seconds since the epoch. */
  private readonly expiresAt: number;
  private closed = false;
  private draining = false;
  private readonly stats = { turns: 0, failed: 0, audioSeconds: 0 };

  constructor(
    private readonly deps: SessionDependencies,
    private readonly socket: SessionSocket,
    initial: { config: SessionConfig; dialect: Dialect; id?: string | undefined },
  ) {
    this.id = initial.id ?? protocol.newSessionId();
    this.expiresAt = Math.floor(Date.now() / 1000 + deps.limits.maxSessionSeconds);
    this.config = initial.config;
    this.dialect = initial.dialect;
    this.touch();
    this.sessionTimer = setTimeout(() => this.expire('session_expired'), deps.limits.maxSessionSeconds * 1000).unref();
  }

  /**
   * Sends session.created; client events that arrive meanwhile wait for it. `refusal`: the connection
   * asked for what earshot does not serve (a conversation session): the error is sent and it closes.
   */
  start({ refusal, urlModel }: { refusal?: ApiError | undefined; urlModel?: string | undefined } = {}): void {
    this.enqueue(async () => {
      if (refusal) {
        this.send(protocol.errorEvent(refusal));
        this.socket.close(protocol.CLOSE_CODES.invalidRequest, protocol.closeReason(refusal));
        return;
      }
      // The Node SDK always names a model in the URL (usually a realtime model): it becomes the
      // transcription model only when it is one earshot serves.
      if (urlModel && this.config.model === undefined && (await this.deps.registry.resolve(urlModel))) {
        this.config = { ...this.config, model: urlModel };
      }
      this.vad = await this.deps.vad();
      this.resetTurnDetection();
      this.input = await AudioInput.create(this.config.inputFormat);
      this.model = await this.resolveModel(this.config.model);
      this.send(protocol.sessionEvent('created', this.dialect, this.config, this.facts()));
    });
  }

  private facts(): SessionFacts {
    return {
      id: this.id,
      expiresAt: this.expiresAt,
      defaultModel: this.deps.defaultModel,
    };
  }

  /** One WebSocket message from the client: its text, or undefined for a binary frame. */
  receive(data: string | undefined): void {
    this.touch();
    this.enqueue(() => this.handle(data));
  }

  private enqueue(task: () => Promise<void>): void {
    this.queue = this.queue.then(task).catch((error: unknown) => this.internalError(error));
  }

  private async handle(data: string | undefined): Promise<void> {
    // No input before the session started (it was refused, and is closing).
    if (this.closed || !this.input) return;
    if (data === undefined) {
      this.send(protocol.errorEvent(protocol.binaryFrameError()));
      return;
    }
    const parsed = protocol.parseClientEvent(data, this.config);
    if (!parsed.ok) {
      this.send(protocol.errorEvent(parsed.error, parsed.eventId));
      if (parsed.closeSession)
        this.socket.close(protocol.CLOSE_CODES.invalidRequest, protocol.closeReason(parsed.error));
      return;
    }
    const event = parsed.event;
    switch (event.type) {
      case 'session.update':
        return this.update(event.config, event.dialect, event.eventId);
      case 'input_audio_buffer.append':
        return this.append(event.audio, event.eventId);
      case 'input_audio_buffer.commit':
        return this.commit(event.eventId);
      case 'input_audio_buffer.clear':
        return this.clear();
    }
  }

  private async update(config: SessionConfig, dialect: Dialect, eventId: string | undefined): Promise<void> {
    const model = await this.resolveModel(config.model);
    if (!model) {
      const param =
        dialect === 'ga' ? 'session.audio.input.transcription.model' : 'session.input_audio_transcription.model';
      const error = new ApiError('model_not_found', { model: config.model ?? this.deps.defaultModel }, { param });
      this.send(protocol.errorEvent(error, eventId));
      return;
    }
    const formatChanged = config.inputFormat !== this.config.inputFormat;
    const detectionChanged = JSON.stringify(config.turnDetection) !== JSON.stringify(this.config.turnDetection);
    this.config = config;
    this.dialect = dialect;
    this.model = model;
    if (formatChanged) this.input = await AudioInput.create(config.inputFormat);
    if (detectionChanged) this.resetTurnDetection();
    this.send(protocol.sessionEvent('updated', this.dialect, this.config, this.facts()));
  }

  private async append(audio: string, eventId: string | undefined): Promise<void> {
    let decoded: Float32Array;
    try {
      decoded = this.input!.push(audio); // set before any client event is handled
    } catch (error) {
      if (!(error instanceof InvalidAudioError)) throw error;
      this.send(
        protocol.errorEvent(new ApiError('invalid_value', { detail: error.message }, { param: 'audio' }), eventId),
      );
      return;
    }
    const turnStart = this.turn?.start ?? this.buffer.start;
    if (!this.detector && this.buffer.end + decoded.length - turnStart > samples(this.deps.limits.maxTurnSeconds)) {
      this.send(
        protocol.errorEvent(new ApiError('turn_too_long', { maxSeconds: this.deps.limits.maxTurnSeconds }), eventId),
      );
      return;
    }
    this.buffer.append(decoded);
    this.stats.audioSeconds += decoded.length / SAMPLE_RATE;
    if (!this.vadStream || !this.detector) return;
    const probabilities = await this.vadStream.process(decoded);
    for (const probability of probabilities) {
      // The VAD's chunks are counted from where its stream began in the session's audio.
      const chunkEnd = this.vadOrigin + ++this.vadChunks * VAD_CHUNK_SAMPLES;
      for (const turnEvent of this.detector.push(probability, milliseconds(chunkEnd)))
        this.onTurnEvent(turnEvent, chunkEnd);
      if (this.turn && chunkEnd - this.turn.start >= samples(this.deps.limits.maxTurnSeconds)) {
        // A turn as long as a turn may be is committed there; if the speaker goes on, a new turn begins.
        this.stopTurn(chunkEnd, milliseconds(chunkEnd));
        this.startTurn(chunkEnd, milliseconds(chunkEnd));
      }
    }
    if (!this.turn) this.buffer.dropBefore(this.buffer.end - samples(KEEP_BEFORE_TURN_SECONDS));
    this.maybeDecodePartial();
  }

  /** A turn event decided at the end of the VAD chunk ending at session index `chunkEnd`. */
  private onTurnEvent(event: TurnEvent, chunkEnd: number): void {
    if (event.type === 'speech_started') {
      if (this.turn) return;
      this.startTurn(samples(event.audioStartMs / 1000), event.audioStartMs);
    } else if (this.turn) {
      // As OpenAI's audio_end_ms, the turn ends where the stop was decided: its audio includes the
      // silence that ended it, which helps the decoder end cleanly.
      this.stopTurn(chunkEnd, milliseconds(chunkEnd));
    }
  }

  /** A turn whose audio begins at session index `start` (never before what the buffer still holds). */
  private newTurn(start: number): Turn {
    return {
      itemId: protocol.newItemId(),
      start: Math.max(start, this.buffer.start),
      stable: new StableText(this.deps.firstWordsMinProbability),
      partialEnd: start,
      partialsDone: 0,
      partial: undefined,
    };
  }

  private startTurn(start: number, audioStartMs: number): void {
    this.turn = this.newTurn(start);
    this.send(protocol.speechStartedEvent({ itemId: this.turn.itemId, audioStartMs }));
  }

  private stopTurn(end: number, audioEndMs: number): void {
    const turn = this.turn;
    if (!turn) return;
    this.turn = undefined;
    this.send(protocol.speechStoppedEvent({ itemId: turn.itemId, audioEndMs }));
    this.commitTurn(turn, end);
  }

  /** Sends committed and the item events, then decodes the turn's audio to its end. */
  private commitTurn(turn: Turn, end: number): void {
    turn.partial?.abort();
    const audio = this.buffer.slice(turn.start, end);
    this.buffer.dropBefore(end);
    const item = { itemId: turn.itemId, previousItemId: this.lastItemId };
    this.send(protocol.committedEvent(item));
    for (const event of protocol.committedItemEvents(this.dialect, item)) this.send(event);
    this.lastItemId = turn.itemId;
    this.pendingFinals++;
    this.finals = this.finals
      .then(() => this.finishTurn(turn, audio))
      .finally(() => {
        this.pendingFinals--;
        this.maybeDecodePartial();
      });
  }

  private async commit(eventId: string | undefined): Promise<void> {
    const turn = this.turn ?? this.newTurn(this.buffer.start);
    const seconds = (this.buffer.end - turn.start) / SAMPLE_RATE;
    if (seconds < MIN_COMMIT_SECONDS) {
      this.send(
        protocol.errorEvent(new ApiError('input_audio_buffer_commit_empty', { bufferedMs: seconds * 1000 }), eventId),
      );
      return;
    }
    this.turn = undefined;
    this.commitTurn(turn, this.buffer.end);
    // With turn detection on, the detector starts afresh after a client's commit: a turn it was in is done.
    if (this.detector) this.resetTurnDetection();
  }

  private clear(): void {
    this.turn?.partial?.abort();
    if (this.turn) this.turn.cleared = true;
    this.turn = undefined;
    this.buffer.clear();
    this.resetTurnDetection();
    this.send(protocol.clearedEvent());
  }

  private resetTurnDetection(): void {
    const detection = this.config.turnDetection;
    this.vadStream = detection ? this.vad?.createStream() : undefined;
    this.detector = detection ? new TurnDetector(detection) : undefined;
    this.vadOrigin = this.buffer.end;
    this.vadChunks = 0;
  }

  /** Starts a partial decode of the turn so far when one is due and none is running. */
  private maybeDecodePartial(): void {
    const turn = this.turn;
    if (!turn || turn.partial || this.closed || this.draining) return;
    const end = this.buffer.end;
    const length = (end - turn.start) / SAMPLE_RATE;
    if (length > FIT_WINDOW_MAX_SECONDS) return;
    const since = (end - turn.partialEnd) / SAMPLE_RATE;
    const due =
      turn.partialsDone === 0
        ? length >= FIRST_PARTIAL_SECONDS
        : since >= (turn.stable.sent === '' ? FIRST_PARTIALS_INTERVAL_SECONDS : PARTIAL_INTERVAL_SECONDS);
    if (!due) return;
    const controller = new AbortController();
    turn.partial = controller;
    turn.partialEnd = end;
    const audio = this.buffer.slice(turn.start, end);
    const options: TranscribeOptions = {
      ...this.decodeOptions(),
      // Forced to start with the words sent, so it only proposes how the turn goes on.
      ...(turn.stable.sent && { prefix: turn.stable.sent }),
      // Until the first words are sent, their probabilities decide whether they may be (stability.ts).
      ...(turn.stable.sent === '' && turn.stable.firstWordsMinProbability > 0 && { word_timestamps: true }),
      beam_size: 1,
      temperature: [0],
      fit_window: true,
      partial: true,
    };
    void this.decode(audio, options, controller.signal).then(
      (transcript) => {
        turn.partial = undefined;
        turn.partialsDone++;
        if (controller.signal.aborted || this.turn !== turn) return;
        const text = transcriptText(transcript);
        const spoken = transcript.segments.flatMap((segment) => segment.words ?? []);
        const delta = turn.stable.offer(text, wordProbabilities(text, spoken));
        // A turn's words wait until the turns before it are completed, so events come in order.
        if (delta) this.sendAfterFinals(turn, protocol.transcriptionDeltaEvent({ itemId: turn.itemId, delta }));
        this.maybeDecodePartial();
      },
      (error: unknown) => {
        turn.partial = undefined;
        // A partial that fails or is cancelled costs the turn nothing: the final decode still runs.
        if (!controller.signal.aborted)
          this.deps.log.warn({ session: this.id, err: errorMessage(error) }, 'partial decode failed');
      },
    );
  }

  private async finishTurn(turn: Turn, audio: Float32Array): Promise<void> {
    if (this.closed) return;
    const seconds = audio.length / SAMPLE_RATE;
    const stoppedAt = performance.now();
    const fit = seconds <= FIT_WINDOW_MAX_SECONDS;
    // Not forced to start with the words sent (a wrong one would steer the rest, and a forced prefix
    // once made the decode repeat the turn): StableText.finish aligns the decode with them.
    const options: TranscribeOptions = {
      ...this.decodeOptions(),
      ...(fit && { fit_window: true }),
      ...(this.config.includeLogprobs && { logprobs: true }),
    };
    // A turn without words sent yet (manual commits, short turns) gets its segments as they are
    // decoded; otherwise what follows the words sent is sent once the whole turn is decoded.
    const streamSegments = turn.stable.sent === '';
    try {
      const transcript = await this.decode(audio, options, this.jobs.signal, (text) => {
        if (!streamSegments) return;
        const delta = turn.stable.add(text);
        if (delta) this.send(protocol.transcriptionDeltaEvent({ itemId: turn.itemId, delta }));
      });
      if (this.closed) return;
      const rest = streamSegments ? '' : turn.stable.finish(transcriptText(transcript));
      if (rest) this.send(protocol.transcriptionDeltaEvent({ itemId: turn.itemId, delta: rest }));
      const logprobs = this.config.includeLogprobs
        ? transcript.segments.flatMap((segment) => segment.logprobs ?? [])
        : undefined;
      this.send(
        protocol.transcriptionCompletedEvent({
          itemId: turn.itemId,
          transcript: turn.stable.sent,
          audioSeconds: seconds,
          logprobs,
        }),
      );
      this.stats.turns++;
      this.deps.metrics?.observeRealtimeTurn('completed', (performance.now() - stoppedAt) / 1000);
    } catch (error) {
      if (this.closed) return;
      this.stats.failed++;
      this.deps.metrics?.observeRealtimeTurn('failed');
      const apiError = toApiError(error);
      this.deps.log.warn({ session: this.id, item: turn.itemId, err: apiError.message }, 'turn failed');
      this.send(protocol.transcriptionFailedEvent({ itemId: turn.itemId, error: apiError }));
    }
  }

  private decodeOptions(): TranscribeOptions {
    return {
      ...(this.config.language && { language: this.config.language }),
      ...(this.config.prompt && { initial_prompt: this.config.prompt }),
      without_timestamps: true,
      condition_on_previous_text: false,
      vad_filter: false,
    };
  }

  /** Runs one live job on the turn's audio, written to a temporary WAV file for the worker. */
  private async decode(
    audio: Float32Array,
    options: TranscribeOptions,
    signal: AbortSignal,
    onText?: (text: string) => void,
  ): Promise<Transcript> {
    const model = this.model ?? (await this.resolveModel(this.config.model));
    if (!model) throw new ApiError('model_not_found', { model: this.config.model ?? this.deps.defaultModel });
    const path = this.deps.newFilePath();
    this.files.add(path);
    try {
      await writeFile(path, encodeWav16k(audio));
      return await this.deps.engine.transcribe(
        model,
        {
          audioPath: path,
          task: 'transcribe',
          options,
          priority: 'live',
          ...(onText && { listener: { onSegment: (segment) => onText(segment.text) } }),
        },
        AbortSignal.any([signal, this.jobs.signal]),
      );
    } finally {
      this.files.delete(path);
      await rm(path, { force: true });
    }
  }

  private async resolveModel(name: string | undefined): Promise<ResolvedModel | undefined> {
    return this.deps.registry.resolve(name ?? this.deps.defaultModel);
  }

  private send(event: object): void {
    if (!this.closed) this.socket.send(event);
  }

  /**
   * Sends an event of the turn being spoken once the final decodes of the turns before it have been sent,
   * unless the client has cleared the turn by then.
   */
  private sendAfterFinals(turn: Turn, event: object): void {
    if (this.pendingFinals === 0) this.send(event);
    else
      this.finals = this.finals.then(() => {
        if (!turn.cleared) this.send(event);
      });
  }

  private touch(): void {
    clearTimeout(this.idleTimer);
    if (this.deps.limits.idleSeconds <= 0) return;
    this.idleTimer = setTimeout(() => this.expire('session_idle_timeout'), this.deps.limits.idleSeconds * 1000).unref();
  }

  private expire(kind: 'session_expired' | 'session_idle_timeout'): void {
    const error =
      kind === 'session_expired'
        ? new ApiError(kind, { maxSeconds: this.deps.limits.maxSessionSeconds })
        : new ApiError(kind, { idleSeconds: this.deps.limits.idleSeconds });
    this.send(protocol.errorEvent(error));
    this.socket.close(protocol.CLOSE_CODES.normal, protocol.closeReason(error));
  }

  private internalError(error: unknown): void {
    this.deps.log.error({ session: this.id, err: error }, 'realtime session error');
    this.send(protocol.errorEvent(new ApiError('internal_error')));
  }

  /** Shutdown: the turn being spoken is committed and finished, then the socket closes with 1001. */
  async drain(): Promise<void> {
    this.draining = true;
    await this.queue;
    if (this.turn) this.stopTurn(this.buffer.end, milliseconds(this.buffer.end));
    await this.finals;
    this.socket.close(protocol.CLOSE_CODES.goingAway, 'server shutting down');
  }

  /** The socket closed: running jobs are cancelled, temporary files removed, the session logged. */
  async dispose(code: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.idleTimer);
    clearTimeout(this.sessionTimer);
    this.jobs.abort();
    this.turn?.partial?.abort();
    await Promise.allSettled([this.queue, this.finals]);
    await Promise.all([...this.files].map((path) => rm(path, { force: true })));
    this.deps.log.info(
      {
        session: this.id,
        model: this.model?.id,
        turns: this.stats.turns,
        failedTurns: this.stats.failed,
        audioSeconds: Math.round(this.stats.audioSeconds * 10) / 10,
        ms: Math.round(performance.now() - this.openedAt),
        closeCode: code,
      },
      'realtime session done',
    );
  }
}

function transcriptText(transcript: Transcript): string {
  return transcript.segments.map((segment) => segment.text).join('');
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
