import { inferIntents, isInsideFolder, parseIntent, type PlaybookRun, SubmitTaskRequest } from '../../contracts';
import { redactSecrets } from '../../activities/ansibleRunner';
import { sealSecrets, SecretKeyError, unsealSecrets } from '../../src/secrets';

describe('intents', () => {
  test('one intent per service, action_service', () => {
    expect(inferIntents('deploy', ['kuma'])).toEqual(['deploy_kuma']);
    expect(inferIntents('add', ['portals', 'dns', 'portals'])).toEqual(['add_portals', 'add_dns']);
  });
  test('parse back into action and service', () => {
    expect(parseIntent('deploy_uptime-kuma')).toEqual({ action: 'deploy', service: 'uptime-kuma' });
    expect(parseIntent('deploy')).toBeUndefined();
    expect(parseIntent('deploy_')).toBeUndefined();
  });
});

describe('playbook paths', () => {
  test.each([
    ['ping.yml', true],
    ['roles/web/site.yml', true],
    ['./a/../ping.yml', true],
    ['../ping.yml', false],
    ['a/../../ping.yml', false],
    ['/etc/passwd', false],
    ['..', false],
    ['ping\0.yml', false],
  ])('%s inside the folder: %s', (p, inside) => {
    expect(isInsideFolder(p)).toBe(inside);
  });
});

describe('SubmitTaskRequest', () => {
  test('fills defaults the orchestrator may leave out', () => {
    const parsed = SubmitTaskRequest.parse({ action: 'deploy', services: ['kuma'], playbook: 'ping.yml' });
    expect(parsed).toMatchObject({
      inventory: 'localhost,',
      extraVars: {},
      secretVars: {},
      priority: 50,
      checkMode: false,
      requirements: { cpu: 0.1, memoryMb: 64, gpuVramMb: 0 },
    });
  });
  test('rejects an inventory outside the playbooks folder but takes a host list', () => {
    const base = { action: 'deploy', services: ['kuma'], playbook: 'ping.yml' };
    expect(SubmitTaskRequest.safeParse({ ...base, inventory: '../hosts' }).success).toBe(false);
    expect(SubmitTaskRequest.safeParse({ ...base, inventory: 'web1,web2' }).success).toBe(true);
  });
  test('rejects duplicate services and unknown plan fields', () => {
    const base = { action: 'deploy', playbook: 'ping.yml' };
    expect(SubmitTaskRequest.safeParse({ ...base, services: ['dns', 'dns'] }).success).toBe(false);
    expect(SubmitTaskRequest.safeParse({ ...base, services: ['dns'], plan: { budget: 1 } }).success).toBe(false);
  });
});

describe('redactSecrets', () => {
  test('scrubs every secret value from what the ledger keeps', () => {
    const run = {
      keyMessages: ['login failed for token abc123'],
      outputTail: ['ok: [h] abc123 and abc1234'],
    } as PlaybookRun;
    const out = redactSecrets(run, ['abc123', 'abc1234', '']);
    expect(out.keyMessages).toEqual(['login failed for token [secret]']);
    expect(out.outputTail).toEqual(['ok: [h] [secret] and [secret]']);
  });
});

describe('sealed secrets', () => {
  test('open with the same key, and with no other', () => {
    const sealed = sealSecrets({ api_token: 'hunter2' }, 'key-one-0123456789');
    expect(sealed).not.toContain('hunter2');
    expect(unsealSecrets(sealed, 'key-one-0123456789')).toEqual({ api_token: 'hunter2' });
    expect(() => unsealSecrets(sealed, 'key-two-0123456789')).toThrow(SecretKeyError);
    // The first character of the ciphertext carries six whole bits: changing it changes a byte.
    const [version, iv, body, tag] = sealed.split('.') as [string, string, string, string];
    const tampered = [version, iv, (body[0] === 'A' ? 'B' : 'A') + body.slice(1), tag].join('.');
    expect(() => unsealSecrets(tampered, 'key-one-0123456789')).toThrow(SecretKeyError);
    expect(() => unsealSecrets('garbage', 'key-one-0123456789')).toThrow('malformed');
  });
});
