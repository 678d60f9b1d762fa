import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';

describe('configuration', () => {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-cfg-'));

  it('has safe defaults', () => {
    const c = loadConfig({}, cwd);
    expect(c.port).toBe(8080);
    expect(c.host).toBe('127.0.0.1');
    expect(c.dataDir).toBe(path.join(cwd, '.attune'));
    expect(c.databaseUrl).toBeUndefined();
    expect(c.amqpUrl).toBeUndefined();
  });

  it('reads the environment', () => {
    const c = loadConfig(
      {
        ATTUNE_PORT: '9001',
        ATTUNE_HOST: '0.0.0.0',
        ATTUNE_DATA_DIR: 'd',
        ATTUNE_DATABASE_URL: 'postgres://x/y',
      },
      cwd,
    );
    expect(c).toMatchObject({
      port: 9001,
      host: '0.0.0.0',
      dataDir: path.join(cwd, 'd'),
      databaseUrl: 'postgres://x/y',
    });
  });

  it('reads a YAML file, and the environment wins over it', () => {
    const file = path.join(cwd, 'attune.yaml');
    fs.writeFileSync(file, 'port: 7000\nATTUNE_HOST: 10.0.0.1\nlogLevel: debug\n');
    try {
      const c = loadConfig({ ATTUNE_HOST: '127.0.0.2' }, cwd);
      expect(c.port).toBe(7000);
      expect(c.host).toBe('127.0.0.2');
      expect(c.logLevel).toBe('debug');
    } finally {
      fs.rmSync(file);
    }
  });

  it('rejects bad values with a clear message', () => {
    expect(() => loadConfig({ ATTUNE_PORT: 'eighty' }, cwd)).toThrow(ConfigError);
    expect(() => loadConfig({ ATTUNE_PORT: '70000' }, cwd)).toThrow(/ATTUNE_PORT/);
    fs.writeFileSync(path.join(cwd, 'bad.yaml'), 'nonsense_key: 1\n');
    expect(() => loadConfig({ ATTUNE_CONFIG: 'bad.yaml' }, cwd)).toThrow(/unknown setting 'nonsense_key'/);
  });
});
