// A scripted wx object: answers getSetting, request and requestSubscribeMessage from a
// script and records every call, so the package's behaviour is checked without WeChat.
'use strict';

function scriptedWx(script) {
  const calls = { getSetting: [], request: [], requestSubscribeMessage: [] };
  const answer = (value, options) => {
    // WeChat calls back later, never inside the call itself.
    setImmediate(() => (value && value.fail ? options.fail(value.fail) : options.success(value)));
  };
  return {
    calls,
    getSetting(options) {
      calls.getSetting.push(options);
      answer(script.setting || { fail: { errMsg: 'getSetting:fail' } }, options);
    },
    request(options) {
      calls.request.push(options);
      answer(script.server(options), options);
    },
    requestSubscribeMessage(options) {
      calls.requestSubscribeMessage.push(options.tmplIds.slice());
      const next = script.panel.shift();
      if (next === undefined) {
        throw new Error('the script has no panel answer left');
      }
      answer(typeof next === 'function' ? next(options.tmplIds) : next, options);
    },
  };
}

/** A grant route that lists `ids` for any moment and records the reported answers. */
function shopServer(ids, reported) {
  return (options) => {
    if (options.method === 'GET') {
      return { statusCode: 200, data: { ok: true, data: { template_ids: ids } } };
    }
    reported.push({ body: options.data, header: options.header });
    const accepted = Object.keys(options.data.subscribe).filter((id) => options.data.subscribe[id].startsWith('accept'));
    return { statusCode: 200, data: { ok: true, data: { accepted, form_ids: 0, ignored: [] } } };
  };
}

/** The panel's answer: every id gets `answer`. */
function every(answer) {
  return (ids) => Object.fromEntries([['errMsg', 'requestSubscribeMessage:ok'], ...ids.map((id) => [id, answer])]);
}

module.exports = { scriptedWx, shopServer, every };
