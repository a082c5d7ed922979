// fashop-notify-miniprogram: asks the buyer for the right to send the shop's order
// notifications (wx.requestSubscribeMessage) and reports every answer to the shop's grant
// route, where fashop-notify records it in its ledger.
//
// WeChat opens the subscribe panel only from a tap or a payment callback, so the work is
// split in two: prepare(moment) does everything that waits (the shop's template ids for the
// moment, the buyer's saved choices from wx.getSetting) when the page loads; ask(moment),
// called first thing in the tap handler, opens the panel at once with what was prepared.
// Plain JavaScript for the mini program's engine: wx APIs only, no build step.

var reasons = require('./reasons.js');

/** wx.requestSubscribeMessage takes at most 3 template ids per call (WeChat's page). */
var MAX_PER_CALL = 3;
var SESSION_HEADER = 'X-Shop-Session';

function chunks(list, size) {
  var out = [];
  for (var i = 0; i < list.length; i += size) {
    out.push(list.slice(i, i + size));
  }
  return out;
}

/** Calls a wx API that takes success/fail callbacks, as a Promise. */
function call(wx, name, args) {
  return new Promise(function (resolve, reject) {
    var options = Object.assign({}, args, { success: resolve, fail: reject });
    wx[name](options);
  });
}

/**
 * The buyer's saved choices: mainSwitch false means every subscription is off;
 * itemSettings holds only the templates the buyer answered with 总是保持以上选择
 * ("always keep this choice"). An old base library without withSubscriptions gives neither.
 */
function readSettings(wx) {
  return call(wx, 'getSetting', { withSubscriptions: true }).then(
    function (res) {
      var s = (res && res.subscriptionsSetting) || {};
      return { mainSwitch: s.mainSwitch !== false, items: s.itemSettings || {} };
    },
    function () {
      return { mainSwitch: true, items: {} };
    }
  );
}

/** Splits the moment's templates by the buyer's saved choice, and the rest into calls of 3. */
function planFor(templateIds, settings) {
  var plan = { templateIds: templateIds, always: [], never: [], batches: [], next: 0, switchedOff: !settings.mainSwitch };
  if (plan.switchedOff) {
    return plan;
  }
  var ask = [];
  templateIds.forEach(function (id) {
    var saved = settings.items[id];
    if (saved === 'reject' || saved === 'ban') {
      plan.never.push(id); // asked "always" and said no: asking again would only nag
    } else {
      if (reasons.answerKind(saved) === 'accepted') plan.always.push(id);
      ask.push(id); // an "always allow" still needs the call: it grants silently, one use per call
    }
  });
  plan.batches = chunks(ask, MAX_PER_CALL);
  return plan;
}

function emptyResult(status, plan) {
  return {
    status: status,
    accepted: [], rejected: [], banned: [], filtered: [],
    silent: false,
    skipped: plan ? plan.never.slice() : [],
    remaining: plan ? plan.batches.length - plan.next : 0,
    error: null,
    report: null
  };
}

/**
 * Creates the subscriber of one page or app.
 *
 * options.wx        the wx object (tests pass a scripted one)
 * options.baseUrl   the shop's grant routes, e.g. 'https://shop.example.com/server/notify'
 * options.session   () => the buyer's session token, sent as X-Shop-Session (options.sessionHeader)
 */
function createSubscriber(options) {
  var wx = options.wx;
  var baseUrl = String(options.baseUrl || '').replace(/\/+$/, '');
  var header = options.sessionHeader || SESSION_HEADER;
  var plans = {};

  function request(method, path, data) {
    var headers = { 'Content-Type': 'application/json' };
    headers[header] = options.session ? String(options.session()) : '';
    return call(wx, 'request', { url: baseUrl + path, method: method, header: headers, data: data, dataType: 'json' })
      .then(function (res) {
        var body = res.data || {};
        if (res.statusCode !== 200 || body.ok !== true) {
          var e = (body && body.error) || {};
          throw { reason: 'server', status: res.statusCode, code: e.code || null, message: e.message || '' };
        }
        return body.data;
      }, function (err) {
        throw { reason: 'network', status: null, code: null, message: (err && err.errMsg) || '' };
      });
  }

  /** Loads what ask(moment) needs; resolves to the plan (also kept for ask). */
  function prepare(moment) {
    return request('GET', '/templates?moment=' + encodeURIComponent(moment)).then(function (data) {
      var ids = (data && data.template_ids) || [];
      return readSettings(wx).then(function (settings) {
        plans[moment] = planFor(ids, settings);
        return plans[moment];
      });
    });
  }

  function report(answers) {
    var subscribe = {};
    Object.keys(answers).forEach(function (id) {
      if (id !== 'errMsg') subscribe[id] = answers[id];
    });
    return request('POST', '/grants', { subscribe: subscribe }).then(
      function (data) { return { ok: true, data: data }; },
      function (err) { return { ok: false, error: err }; }
    );
  }

  function settle(plan, batch, res) {
    var result = emptyResult('done', plan);
    batch.forEach(function (id) {
      var kind = reasons.answerKind(res[id]);
      if (result[kind]) result[kind].push(id);
    });
    result.silent = batch.every(function (id) { return plan.always.indexOf(id) >= 0; });
    plan.next += 1;
    result.remaining = plan.batches.length - plan.next;
    result.status = result.remaining > 0 ? 'more' : 'done';
    return report(res).then(function (r) {
      result.report = r;
      return result;
    });
  }

  /**
   * Opens the subscribe panel for the moment's next (at most 3) templates. Call it first
   * thing in a tap handler or in wx.requestPayment's success callback; never after an
   * await. Resolves to {status: done | more | nothing_to_ask | switched_off | failed |
   * not_prepared, accepted, rejected, banned, filtered, silent, skipped, remaining, error, report}.
   */
  function ask(moment) {
    var plan = plans[moment];
    if (!plan) return Promise.resolve(emptyResult('not_prepared', null));
    if (plan.switchedOff) return Promise.resolve(emptyResult('switched_off', plan));
    if (plan.next >= plan.batches.length) return Promise.resolve(emptyResult('nothing_to_ask', plan));
    var batch = plan.batches[plan.next];
    return call(wx, 'requestSubscribeMessage', { tmplIds: batch }).then(
      function (res) { return settle(plan, batch, res || {}); },
      function (err) {
        var result = emptyResult('failed', plan);
        result.error = reasons.failureOf(err);
        if (result.error.reason === 'switched_off') {
          plan.switchedOff = true;
          result.status = 'switched_off';
        }
        return result;
      }
    );
  }

  /** How many more taps the moment needs (its templates not yet asked, by 3). */
  function remaining(moment) {
    var plan = plans[moment];
    return plan && !plan.switchedOff ? plan.batches.length - plan.next : 0;
  }

  return { prepare: prepare, ask: ask, remaining: remaining };
}

module.exports = {
  createSubscriber: createSubscriber,
  failureOf: reasons.failureOf,
  answerKind: reasons.answerKind,
  MAX_PER_CALL: MAX_PER_CALL
};
