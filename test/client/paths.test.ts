/**
 * Where the client keeps its config, data and cache on each OS, and which setting wins: our own variables,
 * then XDG, then the OS default (Helm's order).
 */
import { describe, expect, it } from 'vitest';
import { clientDirectories } from '../../client/paths.ts';

describe('when nothing is set in the environment', () => {
  it('uses the XDG defaults under home on linux', () => {
    expect(clientDirectories({}, 'linux', '/home/me')).toEqual({
      config: '/home/me/.config/plugindex',
      data: '/home/me/.local/share/plugindex',
      cache: '/home/me/.cache/plugindex',
    });
  });

  it('uses the same defaults on other unix systems', () => {
    expect(clientDirectories({}, 'freebsd', '/usr/home/me').cache).toBe('/usr/home/me/.cache/plugindex');
  });

  it('uses ~/Library on darwin, as Helm does', () => {
    expect(clientDirectories({}, 'darwin', '/Users/me')).toEqual({
      config: '/Users/me/Library/Preferences/plugindex',
      data: '/Users/me/Library/plugindex',
      cache: '/Users/me/Library/Caches/plugindex',
    });
  });

  it('uses APPDATA and LOCALAPPDATA on win32', () => {
    const env = { APPDATA: 'C:\\Users\\me\\AppData\\Roaming', LOCALAPPDATA: 'D:\\Local' };
    expect(clientDirectories(env, 'win32', 'C:\\Users\\me')).toEqual({
      config: 'C:\\Users\\me\\AppData\\Roaming\\plugindex\\Config',
      data: 'D:\\Local\\plugindex\\Data',
      cache: 'D:\\Local\\plugindex\\Cache',
    });
  });

  it('falls back to home\\AppData on win32 when APPDATA and LOCALAPPDATA are unset or empty', () => {
    expect(clientDirectories({ APPDATA: '' }, 'win32', 'C:\\Users\\me')).toEqual({
      config: 'C:\\Users\\me\\AppData\\Roaming\\plugindex\\Config',
      data: 'C:\\Users\\me\\AppData\\Local\\plugindex\\Data',
      cache: 'C:\\Users\\me\\AppData\\Local\\plugindex\\Cache',
    });
  });
});

describe('when XDG directories are set', () => {
  it('puts each directory under its XDG base', () => {
    const env = { XDG_CONFIG_HOME: '/xdg/config', XDG_DATA_HOME: '/xdg/data/', XDG_CACHE_HOME: '/xdg/cache' };
    expect(clientDirectories(env, 'linux', '/home/me')).toEqual({
      config: '/xdg/config/plugindex',
      data: '/xdg/data/plugindex',
      cache: '/xdg/cache/plugindex',
    });
  });

  it('uses them on darwin and win32 too', () => {
    expect(clientDirectories({ XDG_CACHE_HOME: '/tmp/cache' }, 'darwin', '/Users/me').cache).toBe(
      '/tmp/cache/plugindex',
    );
    expect(clientDirectories({ XDG_CONFIG_HOME: 'E:\\xdg' }, 'win32', 'C:\\Users\\me').config).toBe(
      'E:\\xdg\\plugindex',
    );
  });

  it('ignores an empty or relative one, as the XDG spec says, and keeps the others', () => {
    const env = { XDG_CONFIG_HOME: '', XDG_DATA_HOME: 'relative/data', XDG_CACHE_HOME: '/xdg/cache' };
    expect(clientDirectories(env, 'linux', '/home/me')).toEqual({
      config: '/home/me/.config/plugindex',
      data: '/home/me/.local/share/plugindex',
      cache: '/xdg/cache/plugindex',
    });
  });
});

describe('when PLUGINDEX_*_HOME is set', () => {
  it('uses it as is, before XDG and the default', () => {
    const env = {
      PLUGINDEX_CONFIG_HOME: '/etc/plugindex',
      PLUGINDEX_DATA_HOME: './state',
      XDG_CONFIG_HOME: '/xdg/config',
      XDG_DATA_HOME: '/xdg/data',
      XDG_CACHE_HOME: '/xdg/cache',
    };
    expect(clientDirectories(env, 'linux', '/home/me')).toEqual({
      config: '/etc/plugindex',
      data: './state',
      cache: '/xdg/cache/plugindex',
    });
  });

  it('falls through to XDG when it is empty', () => {
    const env = { PLUGINDEX_CACHE_HOME: '', XDG_CACHE_HOME: '/xdg/cache' };
    expect(clientDirectories(env, 'darwin', '/Users/me').cache).toBe('/xdg/cache/plugindex');
  });

  it('wins on win32 over APPDATA', () => {
    const env = { PLUGINDEX_CONFIG_HOME: 'D:\\pi\\config', APPDATA: 'C:\\Roaming' };
    expect(clientDirectories(env, 'win32', 'C:\\Users\\me').config).toBe('D:\\pi\\config');
  });
});
