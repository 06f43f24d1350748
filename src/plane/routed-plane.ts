import type { ArgsOf, ResultOf, RoutedCalls, RoutedMethod } from './methods.js';

/**
 * A plane that sends each call the table routes (`HOLDER_METHODS`) to the holder its route names:
 * how is the subclass's `route` (worker threads, the nodes of a cluster). The methods are written
 * out here, so that go-to-definition and stack traces name them; `implements RoutedCalls` holds
 * this list to the table, so a method added there and not here does not compile.
 */
export abstract class RoutedPlane implements RoutedCalls {
  /** Sends `method` with `args` to the holder its route names; its result, as the table types it. */
  protected abstract route<M extends RoutedMethod>(method: M, args: ArgsOf<M>): Promise<ResultOf<M>>;

  unpublish(...args: ArgsOf<'unpublish'>): Promise<ResultOf<'unpublish'>> {
    return this.route('unpublish', args);
  }

  streams(...args: ArgsOf<'streams'>): Promise<ResultOf<'streams'>> {
    return this.route('streams', args);
  }

  snapshot(...args: ArgsOf<'snapshot'>): Promise<ResultOf<'snapshot'>> {
    return this.route('snapshot', args);
  }

  caption(...args: ArgsOf<'caption'>): Promise<ResultOf<'caption'>> {
    return this.route('caption', args);
  }

  view(...args: ArgsOf<'view'>): Promise<ResultOf<'view'>> {
    return this.route('view', args);
  }

  endView(...args: ArgsOf<'endView'>): Promise<ResultOf<'endView'>> {
    return this.route('endView', args);
  }

  startup(...args: ArgsOf<'startup'>): Promise<ResultOf<'startup'>> {
    return this.route('startup', args);
  }

  find(...args: ArgsOf<'find'>): Promise<ResultOf<'find'>> {
    return this.route('find', args);
  }

  terminate(...args: ArgsOf<'terminate'>): Promise<ResultOf<'terminate'>> {
    return this.route('terminate', args);
  }

  setMuted(...args: ArgsOf<'setMuted'>): Promise<ResultOf<'setMuted'>> {
    return this.route('setMuted', args);
  }

  soundOn(...args: ArgsOf<'soundOn'>): Promise<ResultOf<'soundOn'>> {
    return this.route('soundOn', args);
  }

  soundOff(...args: ArgsOf<'soundOff'>): Promise<ResultOf<'soundOff'>> {
    return this.route('soundOff', args);
  }

  sheddable(...args: ArgsOf<'sheddable'>): Promise<ResultOf<'sheddable'>> {
    return this.route('sheddable', args);
  }

  shed(...args: ArgsOf<'shed'>): Promise<ResultOf<'shed'>> {
    return this.route('shed', args);
  }

  unshed(...args: ArgsOf<'unshed'>): Promise<ResultOf<'unshed'>> {
    return this.route('unshed', args);
  }

  mixerStartup(...args: ArgsOf<'mixerStartup'>): Promise<ResultOf<'mixerStartup'>> {
    return this.route('mixerStartup', args);
  }

  mixerAdd(...args: ArgsOf<'mixerAdd'>): Promise<ResultOf<'mixerAdd'>> {
    return this.route('mixerAdd', args);
  }

  mixerRemove(...args: ArgsOf<'mixerRemove'>): Promise<ResultOf<'mixerRemove'>> {
    return this.route('mixerRemove', args);
  }

  mixerLayout(...args: ArgsOf<'mixerLayout'>): Promise<ResultOf<'mixerLayout'>> {
    return this.route('mixerLayout', args);
  }

  mixerLabel(...args: ArgsOf<'mixerLabel'>): Promise<ResultOf<'mixerLabel'>> {
    return this.route('mixerLabel', args);
  }

  mixerAudioVideo(...args: ArgsOf<'mixerAudioVideo'>): Promise<ResultOf<'mixerAudioVideo'>> {
    return this.route('mixerAudioVideo', args);
  }

  mixerFind(...args: ArgsOf<'mixerFind'>): Promise<ResultOf<'mixerFind'>> {
    return this.route('mixerFind', args);
  }

  mixerTerminate(...args: ArgsOf<'mixerTerminate'>): Promise<ResultOf<'mixerTerminate'>> {
    return this.route('mixerTerminate', args);
  }
}
