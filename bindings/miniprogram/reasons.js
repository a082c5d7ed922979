// What a failed wx.requestSubscribeMessage means, in plain results the page can act on.
// The errCodes are WeChat's (docs/spec/wechat.md, "The mini program's side", cites where
// each comes from); a code not listed is "failed", with WeChat's errMsg kept.

var BY_ERRCODE = {
  10001: { reason: 'no_templates', retry: false, text: '没有可订阅的通知' },
  10002: { reason: 'network', retry: true, text: '网络不佳，订阅未完成，请稍后再试' },
  10003: { reason: 'network', retry: true, text: '网络不佳，订阅未完成，请稍后再试' },
  10004: { reason: 'bad_template_id', retry: false, text: '通知模板有误，请联系商家' },
  10005: { reason: 'cannot_show', retry: true, text: '暂时无法显示订阅窗口' },
  20001: { reason: 'template_missing', retry: false, text: '通知模板已不存在，请联系商家' },
  20004: { reason: 'switched_off', retry: false, text: '你已关闭小程序的订阅消息，可在设置中打开' }
};

// Before base library 2.8.2 any call worked; since then only a tap or a payment
// callback may open the panel, and WeChat says so in errMsg (no errCode is documented).
var NOT_FROM_TAP = /TAP gesture|user gesture|点击/i;

/** The plain result for a fail callback's object: {reason, retry, text, errCode, errMsg}. */
function failureOf(err) {
  var code = err && typeof err.errCode === 'number' ? err.errCode : null;
  var msg = err && typeof err.errMsg === 'string' ? err.errMsg : '';
  var known = code !== null ? BY_ERRCODE[code] : undefined;
  if (!known && NOT_FROM_TAP.test(msg)) {
    known = { reason: 'not_from_tap', retry: true, text: '请点击按钮订阅通知' };
  }
  if (!known) {
    known = { reason: 'failed', retry: true, text: '订阅未完成，请稍后再试' };
  }
  return { reason: known.reason, retry: known.retry, text: known.text, errCode: code, errMsg: msg };
}

/**
 * An answer for one template id, as the page should count it. acceptWithAudio,
 * acceptWithAlert and acceptWithForcePush are accepts with a reminder style the buyer chose.
 */
function answerKind(answer) {
  if (typeof answer === 'string' && answer.indexOf('accept') === 0) {
    return 'accepted';
  }
  if (answer === 'reject') return 'rejected';
  if (answer === 'ban') return 'banned';
  if (answer === 'filter') return 'filtered';
  return 'unknown';
}

module.exports = { failureOf: failureOf, answerKind: answerKind, BY_ERRCODE: BY_ERRCODE };
