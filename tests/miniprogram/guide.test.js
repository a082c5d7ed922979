// The guide's mini program code (docs/fashop-integration.md, its ```js blocks) run as
// WeChat would: App and Page registered, the pay page loaded, a payment that succeeds,
// with a scripted wx and shop. Keeps the guide's code working with the package.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const pkg = require('../../bindings/miniprogram/index.js');
const { scriptedWx, shopServer, every } = require('../../bindings/miniprogram/test/scripted_wx.js');

const GUIDE = path.join(__dirname, '..', '..', 'docs', 'fashop-integration.md');

test("the guide's app.js and pay page ask after the payment and report the answers", async () => {
  const blocks = [...fs.readFileSync(GUIDE, 'utf8').matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
  assert.equal(blocks.length, 2, 'app.js and the pay page');
  const reported = [];
  const ids = ['tplPay', 'tplShip', 'tplRefund'];
  const wx = scriptedWx({ setting: { subscriptionsSetting: { mainSwitch: true } }, server: shopServer(ids, reported), panel: [every('accept')] });
  let redirected = null;
  wx.getStorageSync = (key) => (key === 'token' ? 'sess-guide' : '');
  wx.requestPayment = (o) => setImmediate(() => o.success({ errMsg: 'requestPayment:ok' }));
  wx.redirectTo = (o) => { redirected = o.url; };
  let app = null;
  let page = null;
  const context = vm.createContext({
    wx,
    App: (def) => { app = def; },
    Page: (def) => { page = def; },
    getApp: () => app,
    require: (name) => { assert.equal(name, 'fashop-notify-miniprogram'); return pkg; },
  });
  vm.runInContext(blocks[0], context);
  app.onLaunch();
  vm.runInContext(blocks[1], context);
  page.setData = (d) => Object.assign(page.data || (page.data = {}), d);
  page.onLoad();
  await new Promise((r) => setImmediate(r)); // the templates request
  await new Promise((r) => setImmediate(r)); // wx.getSetting
  page.pay({ orderId: 42, timeStamp: '1', nonceStr: 'n', package: 'prepay_id=x', signType: 'MD5', paySign: 's' });
  // Bounded: the callbacks settle within a few turns of the event loop.
  for (let turn = 0; redirected === null && turn < 1000; turn++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(wx.calls.requestSubscribeMessage, [ids]);
  assert.equal(wx.calls.request[0].url, 'https://shop.example.com/server/notify/templates?moment=after_payment');
  assert.deepEqual(reported[0].body.subscribe, { tplPay: 'accept', tplShip: 'accept', tplRefund: 'accept' });
  assert.equal(reported[0].header['X-Shop-Session'], 'sess-guide');
  assert.equal(redirected, '/pages/order/detail?id=42');
});
