import { inferIntents, isInsideFolder, parseIntent, SubmitTaskRequest } from '../../contracts';
import { secretScrubber } from '../../activities/ansibleEvents';
import { fieldIssues } from '../../src/api/problem';
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
  test('takes an inventory inside the playbooks folder or a host list of this machine, and nothing else', () => {
    const base = { action: 'deploy', services: ['kuma'], playbook: 'ping.yml' };
    const accepts = (inventory: string) => SubmitTaskRequest.safeParse({ ...base, inventory }).success;
    expect(accepts('inventories/prod.ini')).toBe(true);
    expect(accepts('localhost,')).toBe(true);
    expect(accepts('localhost, 127.0.0.1,')).toBe(true);
    expect(accepts('../hosts')).toBe(false);
    expect(accepts('web1,web2')).toBe(false);
    expect(accepts('localhost,attacker.example')).toBe(false);
    expect(accepts('localhost:2222,')).toBe(false);
    expect(accepts('host[1:3],')).toBe(false);
    expect(accepts(',')).toBe(false);
  });
  test('refuses, as a field error, variables that steer Ansible or that Ansible fills in', () => {
    const base = { action: 'deploy', services: ['kuma'], playbook: 'ping.yml' };
    const issuesOf = (body: object) => {
      const parsed = SubmitTaskRequest.safeParse({ ...base, ...body });
      return parsed.success ? [] : fieldIssues(parsed.error);
    };
    for (const name of ['ansible_python_interpreter', 'ansible_connection', 'ansible_host', 'ANSIBLE_BECOME', '_ansible_no_log', 'hostvars', 'groups', 'inventory_hostname', 'omit', 'environment', 'playbook_dir']) {
      expect(issuesOf({ extraVars: { [name]: 'x' } })).toEqual([{ field: `extraVars.${name}`, message: expect.stringMatching(/^reserved/) }]);
    }
    expect(issuesOf({ secretVars: { ansible_become_password: 'x' } })).toEqual([
      { field: 'secretVars.ansible_become_password', message: expect.stringMatching(/^reserved/) },
    ]);
    expect(issuesOf({ extraVars: { message: '{{ anything }}', seconds: 3, ansible: 'a name, not a prefix' } })).toEqual([]);
  });
  test('rejects duplicate services and unknown plan fields', () => {
    const base = { action: 'deploy', playbook: 'ping.yml' };
    expect(SubmitTaskRequest.safeParse({ ...base, services: ['dns', 'dns'] }).success).toBe(false);
    expect(SubmitTaskRequest.safeParse({ ...base, services: ['dns'], plan: { budget: 1 } }).success).toBe(false);
  });
});

describe('secretScrubber', () => {
  test('scrubs each secret in every form it can be printed in, the longer first', () => {
    const scrub = secretScrubber(['abc123', 'abc1234', '']);
    expect(scrub('ok: [h] abc123 and abc1234')).toBe('ok: [h] [secret] and [secret]');
    const quoted = secretScrubber(['a"b\\c-ü']);
    expect(quoted('raw a"b\\c-ü')).toBe('raw [secret]');
    expect(quoted(JSON.stringify({ token: 'a"b\\c-ü' }))).toBe('{"token":"[secret]"}');
    expect(quoted('{"token": "a\\"b\\\\c-\\u00fc"}')).toBe('{"token": "[secret]"}');
  });
  test('scrubs each line of a multi-line secret where output is split into lines', () => {
    const scrub = secretScrubber(['-----BEGIN KEY-----\nMIIEvQIBADANBg\nab\n-----END KEY-----']);
    expect(scrub('stderr: MIIEvQIBADANBg')).toBe('stderr: [secret]');
    expect(scrub('stderr: ab')).toBe('stderr: ab');
  });
});

describe('sealed secrets', () => {
  test('open with the same key, and with no other', () => {
    const sealed = sealSecrets({ api_token: 'hunter2' }, 'key-one-0123456789', 'task-a');
    expect(sealed).not.toContain('hunter2');
    expect(unsealSecrets(sealed, 'key-one-0123456789', 'task-a')).toEqual({ api_token: 'hunter2' });
    expect(() => unsealSecrets(sealed, 'key-two-0123456789', 'task-a')).toThrow(SecretKeyError);
    // The first character of the ciphertext carries six whole bits: changing it changes a byte.
    const [version, boundTo, iv, body, tag] = sealed.split('.') as [string, string, string, string, string];
    const tampered = [version, boundTo, iv, (body[0] === 'A' ? 'B' : 'A') + body.slice(1), tag].join('.');
    expect(() => unsealSecrets(tampered, 'key-one-0123456789', 'task-a')).toThrow(SecretKeyError);
    expect(() => unsealSecrets('garbage', 'key-one-0123456789', 'task-a')).toThrow('malformed');
  });
  test('open only for the task they were sealed for, even with the task id in the blob rewritten', () => {
    const sealed = sealSecrets({ api_token: 'hunter2' }, 'key-one-0123456789', 'task-a');
    expect(() => unsealSecrets(sealed, 'key-one-0123456789', 'task-b')).toThrow('sealed secrets belong to task task-a, not to task task-b');
    const [version, , ...rest] = sealed.split('.');
    const relabelled = [version, Buffer.from('task-b').toString('base64url'), ...rest].join('.');
    expect(() => unsealSecrets(relabelled, 'key-one-0123456789', 'task-b')).toThrow('cannot be opened for task task-b');
  });
});
