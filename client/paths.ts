/**
 * Where the client keeps things, found as Helm finds them (`pkg/helmpath/lazypath*.go`): our own variable
 * first, then the XDG base directory, then the OS default. Three directories, because they are kept for
 * different lengths of time:
 *   config  config.json: what the user chose (registries, auth references)
 *   data    pinned registry keys, the highest generation seen, installs and their receipts: what `cache
 *           clean` never touches (sigstore-js keeps its trusted root in a data directory for the same reason)
 *   cache   fetched documents and artifacts, all verified again when used: deletable at any time
 *
 * Pure: the environment, platform and home directory come in as parameters.
 *
 * @example
 * const dirs = clientDirectories(process.env, process.platform, os.homedir());
 * const configFile = path.join(dirs.config, 'config.json');
 */
import { posix, win32 } from 'node:path';

export interface ClientDirectories {
  readonly config: string;
  readonly data: string;
  readonly cache: string;
}

const APP = 'plugindex';

/**
 * Each of PLUGINDEX_CONFIG_HOME / PLUGINDEX_DATA_HOME / PLUGINDEX_CACHE_HOME (used as is), else
 * XDG_CONFIG_HOME / XDG_DATA_HOME / XDG_CACHE_HOME + '/plugindex', else the OS default: linux and others
 * ~/.config/plugindex, ~/.local/share/plugindex, ~/.cache/plugindex; darwin ~/Library/Preferences/plugindex,
 * ~/Library/plugindex (Helm's), ~/Library/Caches/plugindex; win32 %APPDATA%\plugindex\Config,
 * %LOCALAPPDATA%\plugindex\Data, %LOCALAPPDATA%\plugindex\Cache (falling back to home\AppData\Roaming and
 * home\AppData\Local). Empty values count as unset; a relative XDG path is ignored, as the XDG Base Directory
 * specification says ("If an implementation encounters a relative path ... it should consider the path
 * invalid and ignore it").
 */
export function clientDirectories(
  env: Readonly<Record<string, string | undefined>>,
  platform: string,
  home: string,
): ClientDirectories {
  const path = platform === 'win32' ? win32 : posix;
  const set = (name: string): string | undefined => {
    const value = Object.hasOwn(env, name) ? env[name] : undefined;
    return value === undefined || value === '' ? undefined : value;
  };
  const xdg = (name: string): string | undefined => {
    const value = set(name);
    return value !== undefined && path.isAbsolute(value) ? path.join(value, APP) : undefined;
  };
  const defaults = osDefaults(platform, home, set);
  return {
    config: set('PLUGINDEX_CONFIG_HOME') ?? xdg('XDG_CONFIG_HOME') ?? defaults.config,
    data: set('PLUGINDEX_DATA_HOME') ?? xdg('XDG_DATA_HOME') ?? defaults.data,
    cache: set('PLUGINDEX_CACHE_HOME') ?? xdg('XDG_CACHE_HOME') ?? defaults.cache,
  };
}

function osDefaults(
  platform: string,
  home: string,
  set: (name: string) => string | undefined,
): ClientDirectories {
  switch (platform) {
    case 'win32': {
      // Config roams with the user's profile; data and cache are the machine's own (Local).
      const roaming = set('APPDATA') ?? win32.join(home, 'AppData', 'Roaming');
      const local = set('LOCALAPPDATA') ?? win32.join(home, 'AppData', 'Local');
      return {
        config: win32.join(roaming, APP, 'Config'),
        data: win32.join(local, APP, 'Data'),
        cache: win32.join(local, APP, 'Cache'),
      };
    }
    case 'darwin':
      return {
        config: posix.join(home, 'Library', 'Preferences', APP),
        data: posix.join(home, 'Library', APP),
        cache: posix.join(home, 'Library', 'Caches', APP),
      };
    default:
      return {
        config: posix.join(home, '.config', APP),
        data: posix.join(home, '.local', 'share', APP),
        cache: posix.join(home, '.cache', APP),
      };
  }
}
