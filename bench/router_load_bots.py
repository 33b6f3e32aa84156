#!/usr/bin/python3
# router_load_bots.py: the call router load benchmark's IM side: users 1..N of a private Prosody,
# all in one process (slixmpp, one asyncio loop), each accepting every call invitation at once.
#
# Usage: /usr/bin/python3 bench/router_load_bots.py PORT USERS [--prefix user] [--password-prefix pw]
#            [--router call@router.localhost] [--login-batch 25] [--login-timeout 60]
#   Logs in PREFIX1..PREFIX<USERS> (passwords PASSWORD_PREFIX1...) on 127.0.0.1:PORT, LOGIN_BATCH at a
#   time. Prints "online N" once every user is online (or "login_failed N" and exits 1 after
#   LOGIN_TIMEOUT seconds), then answers every <invite/> of urn:confab:call:1 (README "XMPP call
#   protocol"; tests/router/xmpp_bot.py speaks the whole of it) with <accept/>.
#   SIGUSR1 prints one line "stats invites=I accepts=A connected=C disconnects=D"; SIGTERM/SIGINT
#   prints it and exits, as does the death of the parent (the benchmark script) or --max-seconds.
# Needs Debian's /usr/bin/python3 (python3-slixmpp).
import argparse
import asyncio
import logging
import os
import signal
import sys

from slixmpp import ClientXMPP
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

NS = "urn:confab:call:1"


def out(line):
    print(line, flush=True)


class Counters:
    def __init__(self):
        self.invites = 0
        self.accepts = 0
        self.connected = 0
        self.disconnects = 0
        self.online = 0

    def line(self):
        return "stats invites=%d accepts=%d connected=%d disconnects=%d" % (
            self.invites, self.accepts, self.connected, self.disconnects)


class AnsweringUser(ClientXMPP):
    """One user: approves the router's presence subscription, accepts every invitation."""

    def __init__(self, jid, password, router, counters, online_event):
        super().__init__(jid, password)
        self.router = router
        self.counters = counters
        self.online_event = online_event
        self.auto_authorize = True  # the router subscribes to the presence of users it rings
        self.auto_subscribe = False
        self["feature_mechanisms"].unencrypted_plain = True
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("disconnected", self.on_disconnected)
        self.was_online = False
        # Our payload only, matched on the raw XML: no 'message' event, no body handling.
        self.register_handler(Callback("confab call", MatchXPath("{jabber:client}message/{%s}invite" % NS),
                                       self.on_invite))
        self.register_handler(Callback("confab connected", MatchXPath("{jabber:client}message/{%s}connected" % NS),
                                       self.on_connected))

    async def on_start(self, _event):
        self.send_presence()
        self.was_online = True
        self.counters.online += 1
        self.online_event.set()

    def on_disconnected(self, _event):
        if self.was_online:
            self.counters.disconnects += 1

    def on_invite(self, msg):
        self.counters.invites += 1
        call = msg.xml.find("{%s}invite" % NS).get("call", "")
        # As fast as we can: the stanza as text, no stanza object built.
        self.send_raw('<message to="%s" type="chat"><accept xmlns="%s" call="%s"/></message>' % (self.router, NS, call))
        self.counters.accepts += 1

    def on_connected(self, _msg):
        self.counters.connected += 1


async def run(args):
    loop = asyncio.get_running_loop()
    counters = Counters()
    users = []
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: out(counters.line()))
    parent = os.getppid()
    end = loop.time() + args.max_seconds

    async def watchdog():
        # No process left behind: a killed script cannot signal us.
        while not done.is_set():
            if os.getppid() != parent or loop.time() > end:
                done.set()
            await asyncio.sleep(1)

    watch = asyncio.ensure_future(watchdog())

    # Log in a batch at a time: a few hundred SASL exchanges at once would only queue in Prosody.
    deadline = loop.time() + args.login_timeout
    for first in range(1, args.users + 1, args.login_batch):
        batch = range(first, min(first + args.login_batch, args.users + 1))
        events = []
        for i in batch:
            event = asyncio.Event()
            user = AnsweringUser("%s%d@localhost" % (args.prefix, i), "%s%d" % (args.password_prefix, i),
                                 args.router, counters, event)
            user.connect(address=("127.0.0.1", args.port), use_ssl=False, force_starttls=False,
                         disable_starttls=True)
            users.append(user)
            events.append(event)
        try:
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), max(0.1, deadline - loop.time()))
        except asyncio.TimeoutError:
            out("login_failed %d" % counters.online)
            watch.cancel()
            return 1
    out("online %d" % counters.online)

    await done.wait()
    watch.cancel()
    out(counters.line())
    for user in users:
        user.disconnect(wait=0)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("users", type=int)
    parser.add_argument("--prefix", default="user")
    parser.add_argument("--password-prefix", default="pw")
    parser.add_argument("--router", default="call@router.localhost")
    parser.add_argument("--login-batch", type=int, default=25)
    parser.add_argument("--login-timeout", type=float, default=60)
    parser.add_argument("--max-seconds", type=float, default=3600)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
