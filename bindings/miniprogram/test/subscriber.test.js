'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { createSubscriber, failureOf, answerKind } = require('../index.js');
const { scriptedWx, shopServer, every } = require('./scripted_wx.js');

const IDS = ['tplPay', 'tplShip', 'tplRefund', 'tplCancel'];

function subscriber(wx) {
  return createSubscriber({ wx, baseUrl: 'https://shop.test/notify/', session: () => 'sess-1' });
}

test('asks at most 3 templates per call and needs a second tap for the fourth', async () => {
  const reported = [];
  const wx = scriptedWx({ setting: { subscriptionsSetting: { mainSwitch: true } }, server: shopServer(IDS, reported), panel: [every('accept'), every('reject')] });
  const sub = subscriber(wx);
  await sub.prepare('after_payment');
  assert.equal(sub.remaining('after_payment'), 2);
  const first = await sub.ask('after_payment');
  assert.deepEqual(wx.calls.requestSubscribeMessage, [['tplPay', 'tplShip', 'tplRefund']]);
  assert.equal(first.status, 'more');
  assert.deepEqual(first.accepted, ['tplPay', 'tplShip', 'tplRefund']);
  assert.equal(first.remaining, 1);
  const second = await sub.ask('after_payment');
  assert.deepEqual(wx.calls.requestSubscribeMessage[1], ['tplCancel']);
  assert.equal(second.status, 'done');
  assert.deepEqual(second.rejected, ['tplCancel']);
  const third = await sub.ask('after_payment');
  assert.equal(third.status, 'nothing_to_ask');
  assert.equal(wx.calls.requestSubscribeMessage.length, 2);
});

test('reports every answer, without errMsg, with the session header, to the grant route', async () => {
  const reported = [];
  const panel = () => ({ errMsg: 'requestSubscribeMessage:ok', tplPay: 'acceptWithAudio', tplShip: 'ban', tplRefund: 'filter' });
  const wx = scriptedWx({ setting: { subscriptionsSetting: { mainSwitch: true } }, server: shopServer(IDS.slice(0, 3), reported), panel: [panel] });
  const sub = subscriber(wx);
  await sub.prepare('after_payment');
  const result = await sub.ask('after_payment');
  assert.equal(wx.calls.request[0].url, 'https://shop.test/notify/templates?moment=after_payment');
  assert.equal(wx.calls.request[1].url, 'https://shop.test/notify/grants');
  assert.deepEqual(reported[0].body, { subscribe: { tplPay: 'acceptWithAudio', tplShip: 'ban', tplRefund: 'filter' } });
  assert.equal(reported[0].header['X-Shop-Session'], 'sess-1');
  assert.deepEqual(result.accepted, ['tplPay']);
  assert.deepEqual(result.banned, ['tplShip']);
  assert.deepEqual(result.filtered, ['tplRefund']);
  assert.deepEqual(result.report.data.accepted, ['tplPay']);
});

test('a buyer who chose "always allow" is asked silently; one who chose "never" is not asked', async () => {
  const items = { tplPay: 'accept', tplShip: 'reject', tplRefund: 'ban' };
  const wx = scriptedWx({ setting: { subscriptionsSetting: { mainSwitch: true, itemSettings: items } }, server: shopServer(IDS.slice(0, 3), []), panel: [every('accept')] });
  const sub = subscriber(wx);
  const plan = await sub.prepare('after_payment');
  assert.deepEqual(plan.never, ['tplShip', 'tplRefund']);
  const result = await sub.ask('after_payment');
  assert.deepEqual(wx.calls.requestSubscribeMessage, [['tplPay']]);
  assert.equal(result.silent, true);
  assert.deepEqual(result.skipped, ['tplShip', 'tplRefund']);
  assert.equal(result.status, 'done');
});

test('the main switch off (mainSwitch false) opens no panel', async () => {
  const wx = scriptedWx({ setting: { subscriptionsSetting: { mainSwitch: false } }, server: shopServer(IDS, []), panel: [] });
  const sub = subscriber(wx);
  await sub.prepare('after_payment');
  const result = await sub.ask('after_payment');
  assert.equal(result.status, 'switched_off');
  assert.equal(wx.calls.requestSubscribeMessage.length, 0);
  assert.equal(sub.remaining('after_payment'), 0);
});

test('errCode 20004 from the panel marks the moment switched off and stops asking', async () => {
  const wx = scriptedWx({ setting: { subscriptionsSetting: { mainSwitch: true } }, server: shopServer(IDS, []), panel: [{ fail: { errCode: 20004, errMsg: 'requestSubscribeMessage:fail' } }] });
  const sub = subscriber(wx);
  await sub.prepare('after_payment');
  const result = await sub.ask('after_payment');
  assert.equal(result.status, 'switched_off');
  assert.equal(result.error.reason, 'switched_off');
  assert.equal((await sub.ask('after_payment')).status, 'switched_off');
  assert.equal(wx.calls.requestSubscribeMessage.length, 1);
});

test('a network failure keeps the batch for the next tap and reports nothing', async () => {
  const reported = [];
  const wx = scriptedWx({ setting: { subscriptionsSetting: { mainSwitch: true } }, server: shopServer(['a'], reported), panel: [{ fail: { errCode: 10002, errMsg: 'requestSubscribeMessage:fail Request list fail' } }, every('accept')] });
  const sub = subscriber(wx);
  await sub.prepare('checkout');
  const failed = await sub.ask('checkout');
  assert.equal(failed.status, 'failed');
  assert.deepEqual([failed.error.reason, failed.error.retry, failed.error.errCode], ['network', true, 10002]);
  assert.equal(reported.length, 0);
  const again = await sub.ask('checkout');
  assert.deepEqual(again.accepted, ['a']);
  assert.deepEqual(wx.calls.requestSubscribeMessage, [['a'], ['a']]);
});

test('WeChat errCodes become plain results', () => {
  assert.equal(failureOf({ errCode: 10001 }).reason, 'no_templates');
  assert.equal(failureOf({ errCode: 10003 }).reason, 'network');
  assert.equal(failureOf({ errCode: 10004 }).reason, 'bad_template_id');
  assert.equal(failureOf({ errCode: 10005 }).reason, 'cannot_show');
  assert.equal(failureOf({ errCode: 20001 }).reason, 'template_missing');
  assert.equal(failureOf({ errCode: 20004 }).retry, false);
  assert.equal(failureOf({ errMsg: 'requestSubscribeMessage:fail can only be invoked by user TAP gesture.' }).reason, 'not_from_tap');
  const unknown = failureOf({ errCode: 29999, errMsg: 'requestSubscribeMessage:fail odd' });
  assert.deepEqual([unknown.reason, unknown.errCode, unknown.errMsg], ['failed', 29999, 'requestSubscribeMessage:fail odd']);
  assert.equal(answerKind('acceptWithAlert'), 'accepted');
  assert.equal(answerKind('acceptWithForcePush'), 'accepted');
  assert.equal(answerKind('nonsense'), 'unknown');
});

test('ask before prepare opens nothing (the panel must not wait for the network)', async () => {
  const wx = scriptedWx({ server: shopServer(IDS, []), panel: [] });
  const result = await subscriber(wx).ask('after_payment');
  assert.equal(result.status, 'not_prepared');
  assert.equal(wx.calls.requestSubscribeMessage.length, 0);
});

test('an old base library without subscription settings asks every template', async () => {
  const wx = scriptedWx({ server: shopServer(['a', 'b'], []), panel: [every('accept')] });
  const sub = subscriber(wx);
  await sub.prepare('order_page');
  const result = await sub.ask('order_page');
  assert.deepEqual(result.accepted, ['a', 'b']);
  assert.equal(result.silent, false);
});

test('a grant route that refuses is reported, the answers still counted', async () => {
  const server = (o) => (o.method === 'GET'
    ? { statusCode: 200, data: { ok: true, data: { template_ids: ['a'] } } }
    : { statusCode: 409, data: { ok: false, error: { code: 'mini_program_not_configured', message: 'no app' } } });
  const wx = scriptedWx({ server, panel: [every('accept')] });
  const sub = subscriber(wx);
  await sub.prepare('checkout');
  const result = await sub.ask('checkout');
  assert.deepEqual(result.accepted, ['a']);
  assert.equal(result.report.ok, false);
  assert.deepEqual([result.report.error.status, result.report.error.code], [409, 'mini_program_not_configured']);
});

test('prepare fails plainly when the shop cannot be reached', async () => {
  const wx = scriptedWx({ server: () => ({ fail: { errMsg: 'request:fail timeout' } }), panel: [] });
  await assert.rejects(subscriber(wx).prepare('checkout'), (e) => e.reason === 'network' && e.message === 'request:fail timeout');
});

test('the package uses no Node-only API (it runs in the mini program engine)', () => {
  const fs = require('node:fs');
  const path = require('node:path');
  for (const file of ['index.js', 'reasons.js']) {
    // The code without its comments (which may well mention await).
    const src = fs.readFileSync(path.join(__dirname, '..', file), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
    const required = [...src.matchAll(/require\(['"]([^'"]+)['"]\)/g)].map((m) => m[1]);
    assert.ok(required.every((r) => r.startsWith('./')), `${file} requires only its own files: ${required}`);
    assert.doesNotMatch(src, /\bprocess\.|\bBuffer\b|setImmediate|__dirname|\basync\b|\bawait\b/, file);
  }
});
