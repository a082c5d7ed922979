// End to end: the mini program package (bindings/miniprogram) talks to the shop's real
// grant routes (GrantEndpoint under `php -S`, the library through FFI, a SQLite ledger),
// and what the buyer accepted lands in the library's ledger. Needs the WeChat sandbox
// (FASHOP_NOTIFY_SANDBOX_URL, scripts/with-sandbox.sh) and the built library (FASHOP_NOTIFY_LIB).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { createSubscriber } = require('../../bindings/miniprogram/index.js');

const ROOT = path.join(__dirname, '..', '..');
const TPL_PAY = '_uwlWXxdjm2IogKR7PfhIg8Ez9oP0ZV1YgHNMqhQY_C';
const TPL_SHIP = 'Ib27Mxy85v0eqHp2ERuLGQZx3NAcZCf_jCmhQdY7Ez-';
const TPL_REFUND = 'AKcL1rxIu4sHSC-GUMEPYZNFeHFXlwDpvt1lYmzB5Uv';

function httpJson(method, url, body, headers) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(url, { method, headers: Object.assign({ 'Content-Type': 'application/json' }, headers) }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ statusCode: res.statusCode, data: text === '' ? null : JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** wx.request over node's http: the transport of the mini program, nothing else. */
function wxOverHttp(panelAnswers) {
  return {
    panels: [],
    request(o) {
      httpJson(o.method, o.url, o.method === 'GET' ? undefined : o.data, o.header).then(o.success, (e) => o.fail({ errMsg: `request:fail ${e.message}` }));
    },
    getSetting(o) {
      setImmediate(() => o.success({ authSetting: {}, subscriptionsSetting: { mainSwitch: true, itemSettings: { [TPL_REFUND]: 'reject' } } }));
    },
    requestSubscribeMessage(o) {
      this.panels.push(o.tmplIds.slice());
      const res = { errMsg: 'requestSubscribeMessage:ok' };
      o.tmplIds.forEach((id) => (res[id] = panelAnswers[id]));
      setImmediate(() => o.success(res));
    },
  };
}

/** php -S on a free port with the grant fixture; resolves once it says it listens. */
async function startShop(env) {
  const port = await new Promise((resolve) => {
    const s = http.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
  const php = spawn('php', ['-d', 'ffi.enable=1', '-S', `127.0.0.1:${port}`, path.join(ROOT, 'bindings/php/tests/fixtures/grant_endpoint.php')], {
    env: Object.assign({}, process.env, env),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await new Promise((resolve, reject) => {
    let seen = '';
    php.stderr.on('data', (c) => { seen += c; if (seen.includes('started')) resolve(); });
    php.on('exit', (code) => reject(new Error(`php -S exited ${code}: ${seen}`)));
  });
  return { php, base: `http://127.0.0.1:${port}` };
}

test('the package asks, the grant route records, the ledger holds the grants', async (t) => {
  const sandbox = process.env.FASHOP_NOTIFY_SANDBOX_URL;
  assert.ok(sandbox && process.env.FASHOP_NOTIFY_LIB, 'run under scripts/with-sandbox.sh with FASHOP_NOTIFY_LIB set');
  const appid = 'wxe2e' + process.pid.toString(16).padStart(12, '0');
  const created = await httpJson('POST', `${sandbox}/sandbox/apps`, { appid, secret: 'e2e-secret-0001' });
  assert.ok(created.statusCode < 300, JSON.stringify(created.data));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-e2e-'));
  fs.copyFileSync(path.join(ROOT, 'examples/mappings.json'), path.join(dir, 'mapping.json'));
  const shop = await startShop({
    SHOP_APPID: appid, SHOP_SECRET: 'e2e-secret-0001', SHOP_DB: path.join(dir, 'notify.db'),
    SHOP_MAPPING_FILE: path.join(dir, 'mapping.json'), SHOP_SESSIONS: JSON.stringify({ 'sess-buyer-1': 'o-buyer-1' }),
  });
  t.after(() => { shop.php.kill(); fs.rmSync(dir, { recursive: true, force: true }); });

  const wx = wxOverHttp({ [TPL_PAY]: 'accept', [TPL_SHIP]: 'acceptWithAlert' });
  const sub = createSubscriber({ wx, baseUrl: `${shop.base}/notify`, session: () => 'sess-buyer-1' });
  const plan = await sub.prepare('after_payment');
  assert.deepEqual(plan.templateIds, [TPL_PAY, TPL_SHIP, TPL_REFUND]);
  assert.deepEqual(plan.never, [TPL_REFUND]); // the buyer said "never" to refund notices
  const result = await sub.ask('after_payment');
  assert.deepEqual(wx.panels, [[TPL_PAY, TPL_SHIP]]);
  assert.deepEqual(result.accepted, [TPL_PAY, TPL_SHIP]);
  assert.equal(result.report.ok, true, JSON.stringify(result.report));
  assert.deepEqual(result.report.data.accepted, [TPL_PAY, TPL_SHIP]);

  const ledger = await httpJson('GET', `${shop.base}/ledger?openid=o-buyer-1`);
  assert.deepEqual(ledger.data.subscribe.templates, { [TPL_PAY]: 1, [TPL_SHIP]: 1 });

  // Another session's report is refused; the ledger is unchanged.
  const stranger = createSubscriber({ wx: wxOverHttp({ [TPL_PAY]: 'accept', [TPL_SHIP]: 'accept' }), baseUrl: `${shop.base}/notify`, session: () => 'forged' });
  await stranger.prepare('after_payment');
  const refused = await stranger.ask('after_payment');
  assert.deepEqual([refused.report.ok, refused.report.error.status, refused.report.error.code], [false, 401, 'unauthorized']);
  const after = await httpJson('GET', `${shop.base}/ledger?openid=o-buyer-1`);
  assert.deepEqual(after.data.subscribe.templates, { [TPL_PAY]: 1, [TPL_SHIP]: 1 });

  const unknown = await httpJson('GET', `${shop.base}/notify/templates?moment=sometime`);
  assert.deepEqual([unknown.statusCode, unknown.data.error.code], [400, 'invalid_request']);
});
