import type { Logger } from 'pino';
import type { SoundPlayer } from '../audio/sound.js';
import type { Pipeline } from './pipeline.js';

/**
 * The audio commands of one push (Web Call Server's mute, unmute, sound_on, sound_off): kept
 * here, applied to whichever pipelines run now, and given to every new one.
 */
export class AudioCommands {
  #muted = false;
  #sound: SoundPlayer | undefined;

  constructor(
    /** The pipelines running now. */
    private readonly pipelines: () => (Pipeline | undefined)[],
    private readonly log: Logger,
    /**
     * A command the running pipeline cannot carry out (a sound over one that passes the Opus as it is, a mute of an
     * encoder other pushes share): one of this output's own, made for the commands now, must take over.
     */
    private readonly needsOwnPipeline: () => void = () => {},
  ) {}

  get muted(): boolean {
    return this.#muted;
  }

  /** The sound being played, if any. */
  get sound(): SoundPlayer | undefined {
    return this.#sound;
  }

  /** Mutes or unmutes the publisher's audio (a sound being played goes on). */
  setMuted(muted: boolean): void {
    this.#muted = muted;
    let done = true;
    for (const pipe of this.pipelines()) if (pipe && !pipe.setMuted(muted)) done = false;
    if (!done) this.needsOwnPipeline();
  }

  /** Plays `player` into the output, replacing any sound playing; it ends by itself unless looping. */
  play(player: SoundPlayer): void {
    const previous = this.#sound;
    this.#sound = player;
    let mixed = true;
    for (const pipe of this.pipelines()) if (pipe && !pipe.setSound(player)) mixed = false;
    if (!mixed) this.needsOwnPipeline();
    player.once('ended', (error) => {
      if (error) this.log.warn({ error }, 'sound file ended with an error');
      if (this.#sound === player) void this.stop();
    });
    void previous?.stop();
  }

  /** Stops the sound being played, if any. */
  async stop(): Promise<void> {
    const player = this.#sound;
    this.#sound = undefined;
    for (const pipe of this.pipelines()) pipe?.setSound(undefined);
    await player?.stop();
  }
}
