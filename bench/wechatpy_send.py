"""Bench worker: wechatpy, as a shop's Python service would use it: one
WeChatClient per process (memory token storage, requests keep-alive session),
its API base pointed at the server under test. Threads share the client.

Speaks the worker protocol of benches/send.rs (ready / phase / result lines).
"""

import argparse
import json
import resource
import sys
import threading
import time

from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

TEMPLATE = "_uwlWXxdjm2IogKR7PfhIg8Ez9oP0ZV1YgHNMqhQY_C"


class ShopClient(WeChatClient):
    """wechatpy hard-codes the token URL; a proxy or test server needs this override."""

    def __init__(self, base, appid, secret):
        super().__init__(appid, secret)
        self.base = base.rstrip("/")
        self.API_BASE_URL = self.base + "/cgi-bin/"
        self.wxa.API_BASE_URL = self.base + "/"

    def fetch_access_token(self):
        return self._fetch_access_token(
            url=self.base + "/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )


def order(worker, thread, i):
    return {
        "order_id": 10086,
        "order_sn": "SN%sT%dN%09d" % (worker, thread, i),
        "order_amount": "128.50",
        "order_total_goods_name": "法式碎花连衣裙 等2件",
        "pay_time": 1795354200,
    }


def send(client, openid, o):
    data = {
        "character_string1": {"value": o["order_sn"]},
        "amount2": {"value": "¥" + o["order_amount"]},
        "thing3": {"value": o["order_total_goods_name"][:20]},
        "time4": {"value": time.strftime("%Y-%m-%d %H:%M", time.localtime(o["pay_time"]))},
    }
    return client.wxa.send_subscribe_message(
        openid, TEMPLATE, data, page="/pages/order/detail?id=%d" % o["order_id"]
    )


def cpu_secs():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--worker", required=True)
    p.add_argument("--api-base", required=True)
    p.add_argument("--appid", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--per-thread", type=int, default=100)
    p.add_argument("--phases", type=int, default=1)
    p.add_argument("--lat-file")
    a = p.parse_args()

    client = ShopClient(a.api_base, a.appid, a.secret)
    start_gate = threading.Barrier(a.threads + 1)
    end_gate = threading.Barrier(a.threads + 1)
    tallies = [{"sent": 0, "failed": 0, "first_error": None, "lat": []} for _ in range(a.threads)]

    def run(t):
        tally = tallies[t]
        openid = "oBench_%s_t%d" % (a.worker, t)
        for phase in range(a.phases):
            start_gate.wait()
            for i in range(phase * a.per_thread, (phase + 1) * a.per_thread):
                s = time.perf_counter_ns()
                try:
                    send(client, openid, order(a.worker, t, i))
                    err = None
                except WeChatClientException as e:
                    err = "errcode %s: %s" % (e.errcode, e.errmsg)
                except Exception as e:  # the network, a bad answer
                    err = repr(e)
                tally["lat"].append(time.perf_counter_ns() - s)
                if err is None:
                    tally["sent"] += 1
                else:
                    tally["failed"] += 1
                    tally["first_error"] = tally["first_error"] or err
            end_gate.wait()

    threads = [threading.Thread(target=run, args=(t,)) for t in range(a.threads)]
    for th in threads:
        th.start()
    print("ready", flush=True)
    if not sys.stdin.readline():
        sys.exit(3)
    cpu0 = cpu_secs()
    t0 = time.perf_counter()
    for phase in range(a.phases):
        start_gate.wait()
        end_gate.wait()
        if phase + 1 < a.phases:
            print("phase", flush=True)
            if not sys.stdin.readline():
                sys.exit(3)
    elapsed = time.perf_counter() - t0
    cpu = cpu_secs() - cpu0
    for th in threads:
        th.join()
    if a.lat_file:
        with open(a.lat_file, "w") as f:
            for t in tallies:
                f.write("".join("%d\n" % v for v in t["lat"]))
    print(json.dumps({
        "sent": sum(t["sent"] for t in tallies),
        "failed": sum(t["failed"] for t in tallies),
        "first_error": next((t["first_error"] for t in tallies if t["first_error"]), None),
        "elapsed_s": elapsed,
        "cpu_s": cpu,
        "peak_rss_kib": peak_rss_kib(),
    }, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
