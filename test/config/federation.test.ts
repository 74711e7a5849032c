// --federate TD=FILE, and `federate` in a config file: parsed into trust domain + absolute bundle
// path, with the mistakes that would blur whose CA vouches for whom refused up front.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, readConfigFile } from '../../src/config/config.ts';
import { parseRunFlags } from '../../src/config/flags.ts';
import { ConfigError } from '../../src/errors.ts';

const base = { upstream: 'http://127.0.0.1:3000', cert: 'w.crt', key: 'w.key', ca: ['ca.crt'] };
const refused = (raw: Record<string, unknown>, message: RegExp) =>
  assert.throws(() => buildConfig([{ ...base, ...raw }], '/srv'), (e: ConfigError) => e instanceof ConfigError && e.field === 'federate' && message.test(e.message));

it('reads repeated --federate TD=FILE flags into trust domains with bundle paths resolved against the working directory', () => {
  const { raw } = parseRunFlags(['--upstream', 'http://127.0.0.1:3000', '--cert', 'w.crt', '--key', 'w.key', '--ca', 'ca.crt',
    '--federate', 'partner.org=bundles/partner.pem', '--federate', 'other.example=/etc/other.pem']);
  assert.deepEqual(buildConfig([raw], '/srv').federations, [
    { trustDomain: 'partner.org', bundle: '/srv/bundles/partner.pem' },
    { trustDomain: 'other.example', bundle: '/etc/other.pem' },
  ]);
  assert.deepEqual(buildConfig([base], '/srv').federations, [], 'no federation unless asked for');
});

it('takes federate in a config file as a mapping or as TD=FILE strings, with paths relative to the file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'authproxy-fed-'));
  try {
    await writeFile(join(dir, 'map.yaml'), 'federate:\n  partner.org: partner.pem\n');
    await writeFile(join(dir, 'list.yaml'), 'federate:\n  - partner.org=bundles/partner.pem\n');
    assert.deepEqual(buildConfig([base, await readConfigFile(join(dir, 'map.yaml'))], '/srv').federations, [{ trustDomain: 'partner.org', bundle: join(dir, 'partner.pem') }]);
    assert.deepEqual(buildConfig([base, await readConfigFile(join(dir, 'list.yaml'))], '/srv').federations, [{ trustDomain: 'partner.org', bundle: join(dir, 'bundles/partner.pem') }]);
  } finally { await rm(dir, { recursive: true, force: true }); }
});

it('refuses a --federate value that is not TRUST_DOMAIN=FILE, or names no valid trust domain', () => {
  refused({ federate: ['partner.pem'] }, /not TRUST_DOMAIN=BUNDLE_FILE/);
  refused({ federate: ['=partner.pem'] }, /not TRUST_DOMAIN=BUNDLE_FILE/);
  refused({ federate: ['partner.org='] }, /not TRUST_DOMAIN=BUNDLE_FILE/);
  refused({ federate: ['Partner.ORG=p.pem'] }, /'Partner\.ORG' is not a SPIFFE trust domain name/);
  for (const td of ['..', '.', 'partner..org', 'partner.org.', '.partner.org']) refused({ federate: [`${td}=p.pem`] }, /is not a SPIFFE trust domain name/);
});

it('refuses one trust domain federated twice, and a trust domain both federated and accepted with --trust-domain', () => {
  refused({ federate: ['partner.org=a.pem', 'partner.org=b.pem'] }, /federated twice/);
  refused({ trustDomain: ['example.org', 'partner.org'], federate: ['partner.org=p.pem'] }, /both accepted with --trust-domain.*and federated/);
});
