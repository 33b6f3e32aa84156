#!/usr/bin/python3
# xmpp_bot.py: an XMPP user for the call router's tests (slixmpp): rings, answers, calls, cancels,
# and prints one line per event on stdout.
#
# Usage: /usr/bin/python3 xmpp_bot.py JID PASSWORD PORT MODE [--router call@router.localhost]
#            [COMMAND ...]   (one stdin command run once online, e.g. "call bob@localhost carol@localhost")
#   MODE: accept | reject | busy | ignore | dnd | text-yes | text-no | text | caller
#     accept/reject/busy/ignore: answer invitations with <accept/>, <reject/>, <reject
#       reason="BUSY"/>, or not at all; dnd: presence show=dnd, no answer; text-yes/text-no: speak
#       only plain text (answer "yes"/"no" to the text invitation); text: plain text, no answer;
#       caller: no answer.
# Lines printed (flushed): "online", "ringing REF from CALLER", "canceled REF" (the caller withdrew,
# or our own cancel was confirmed), "connected REF MEDIA_IP CONFERENCE JOIN_URL" (and "moved ..."
# alike: the call's conference moved to another node), "rejected REF
# REASON", "calling REF CALLEE group GROUP", "text BODY" (every body from the router, one line).
# From any other JID (a conference contact): "presence JID available STATUS" / "presence JID TYPE"
# (unavailable, subscribed, unsubscribed, subscribe), "text JID BODY", "address JID NAME
# PARTICIPANTS MEDIA_IP CONFERENCE JOIN_URL" (its <connected/> payload), "error JID CONDITION TEXT",
# "disco JID CATEGORY/TYPE NAME" (or "disco JID error CONDITION").
# Commands on stdin, one per line: "call JID [JID ...]", "cancel REF", "accept REF",
# "reject REF [REASON]", "say TEXT" (a plain-text message to the router), "raw XML" (sent as is),
# "subscribe JID", "unsubscribe JID", "tell JID TEXT" (a plain chat message to JID), "disco JID"
# (disco#info), "quit".
import asyncio
import os
import re
import sys

from slixmpp import ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream import ET

NS = "urn:confab:call:1"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def out(line):
    print(line, flush=True)


class Bot(ClientXMPP):
    def __init__(self, jid, password, port, mode, router, first_command):
        super().__init__(jid, password)
        self.port = port
        self.mode = mode
        self.router = router
        self.text_only = mode.startswith("text")
        self.pending = b""
        self.first_command = first_command
        # Approve every subscription request (the router's), as a user who trusts it would.
        self.auto_authorize = True
        self.auto_subscribe = False
        self["feature_mechanisms"].unencrypted_plain = True
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("presence", self.on_presence)
        # slixmpp's "message" event needs a <body>; an error without one comes only as this.
        self.add_event_handler("message_error", lambda msg: None if msg["body"] else self.on_message(msg))
        self.add_event_handler("disconnected", lambda _: out("disconnected"))

    async def on_start(self, _event):
        if self.mode == "dnd":
            self.send_presence(pshow="dnd")
        else:
            self.send_presence()
        await self.get_roster()
        asyncio.get_event_loop().add_reader(sys.stdin.fileno(), self.on_stdin)
        out("online")
        if self.first_command:
            self.command(self.first_command)

    def payload(self, name, **attrs):
        element = ET.Element("{%s}%s" % (NS, name))
        for key, value in attrs.items():
            element.set(key.replace("_", "-"), value)
        return element

    def send_payload(self, element, body=None):
        msg = self.make_message(mto=self.router, mtype="chat", mbody=body)
        msg.append(element)
        msg.send()

    def say(self, text):
        self.make_message(mto=self.router, mtype="chat", mbody=text).send()

    def on_presence(self, pres):
        sender = pres["from"].bare
        if sender == self.router or sender == self.boundjid.bare or "@" not in sender:
            return
        kind = pres["type"]
        if kind in ("available", "chat", "away", "xa", "dnd"):
            out("presence %s available %s" % (sender, " ".join(pres["status"].split())))
        else:
            out("presence %s %s" % (sender, kind))

    def on_other_message(self, msg, sender):
        if msg["type"] == "error":
            error = msg.xml.find("{jabber:client}error")
            condition, text = "", ""
            if error is not None:
                for child in error:
                    name = child.tag.split("}", 1)[1]
                    if child.tag.startswith("{%s}" % STANZAS) and name != "text":
                        condition = name
                    elif name == "text":
                        text = " ".join((child.text or "").split())
            out("error %s %s %s" % (sender, condition, text))
            return
        if msg["body"]:
            out("text %s %s" % (sender, " ".join(msg["body"].split())))
        payload = msg.xml.find("{%s}connected" % NS)
        if payload is not None:
            out("address %s %s %s %s %s %s" % (sender, payload.get("name", ""), payload.get("participants", ""),
                                                payload.get("media-ip", ""), payload.get("conference", ""),
                                                payload.get("join-url", "")))

    async def disco(self, jid):
        iq = self.make_iq_get(queryxmlns=DISCO_INFO, ito=jid)
        try:
            result = await iq.send(timeout=10)
        except IqError as e:
            out("disco %s error %s" % (jid, e.condition))
            return
        except IqTimeout:
            out("disco %s timeout" % jid)
            return
        identity = result.xml.find("{%s}query/{%s}identity" % (DISCO_INFO, DISCO_INFO))
        if identity is None:
            out("disco %s none" % jid)
        else:
            out("disco %s %s/%s %s" % (jid, identity.get("category", ""), identity.get("type", ""),
                                       identity.get("name", "")))

    def on_message(self, msg):
        sender = msg["from"].bare
        if sender != self.router and "@" in sender:
            self.on_other_message(msg, sender)
            return
        if msg["type"] == "error":
            out("error " + str(msg["id"]))
            return
        body = msg["body"]
        if body:
            out("text " + " ".join(body.split()))
        payload = None
        for child in msg.xml:
            if child.tag.startswith("{%s}" % NS):
                payload = child
                break
        if self.text_only:
            match = re.search(r"calls you \(call (\d+)\)", body or "")
            if match and self.mode in ("text-yes", "text-no"):
                out("ringing %s from %s" % (match.group(1), body.split()[0]))
                self.say("yes" if self.mode == "text-yes" else "no")
            return
        if payload is None:
            return
        name = payload.tag.split("}", 1)[1]
        call = payload.get("call", "")
        if name == "invite":
            out("ringing %s from %s" % (call, payload.get("from", "")))
            if self.mode == "accept":
                self.send_payload(self.payload("accept", call=call))
            elif self.mode == "reject":
                self.send_payload(self.payload("reject", call=call))
            elif self.mode == "busy":
                self.send_payload(self.payload("reject", call=call, reason="BUSY"))
        elif name == "cancel" or name == "canceled":
            out("canceled " + call)
        elif name == "connected" or name == "moved":
            out("%s %s %s %s %s" % (name, call, payload.get("media-ip", ""), payload.get("conference", ""),
                                    payload.get("join-url", "")))
        elif name == "rejected":
            out("rejected %s %s" % (call, payload.get("reason", "")))
        elif name == "calling":
            out("calling %s %s group %s" % (call, payload.get("to", ""), payload.get("group", "")))
        else:
            out("unknown " + name)

    def on_stdin(self):
        # os.read, not readline: several commands may arrive in one read, and a buffered reader
        # would keep the later ones where the event loop cannot see them.
        data = os.read(sys.stdin.fileno(), 65536)
        if not data:
            asyncio.get_event_loop().remove_reader(sys.stdin.fileno())
            return
        self.pending += data
        while b"\n" in self.pending:
            line, self.pending = self.pending.split(b"\n", 1)
            self.command(line.decode())

    def command(self, line):
        words = line.split()
        if not words:
            return
        verb, args = words[0], words[1:]
        if verb == "call":
            if self.text_only:
                self.say("/call " + " ".join(args))
            else:
                element = self.payload("call")
                for jid in args:
                    callee = ET.SubElement(element, "{%s}callee" % NS)
                    callee.set("jid", jid)
                self.send_payload(element)
        elif verb == "cancel":
            if self.text_only or not args:
                self.say("/cancel" + ("" if not args else " " + args[0]))
            else:
                self.send_payload(self.payload("cancel", call=args[0]))
        elif verb == "accept" and args:
            self.send_payload(self.payload("accept", call=args[0]))
        elif verb == "reject" and args:
            attrs = {"call": args[0]}
            if len(args) > 1:
                attrs["reason"] = args[1]
            self.send_payload(self.payload("reject", **attrs))
        elif verb == "say":
            self.say(line.strip()[len("say"):].strip())
        elif verb == "raw":
            self.send_raw(line.strip()[len("raw"):].strip())
        elif verb in ("subscribe", "unsubscribe") and args:
            self.send_presence(pto=args[0], ptype=verb)
        elif verb == "tell" and len(args) > 1:
            self.make_message(mto=args[0], mtype="chat", mbody=line.strip().split(None, 2)[2]).send()
        elif verb == "disco" and args:
            asyncio.ensure_future(self.disco(args[0]))
        elif verb == "quit":
            self.disconnect()
        out("sent " + verb)


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    jid, password, port, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    rest = sys.argv[5:]
    router = "call@router.localhost"
    if "--router" in rest:
        at = rest.index("--router")
        router = rest[at + 1]
        del rest[at:at + 2]
    bot = Bot(jid, password, port, mode, router, " ".join(rest))
    bot.connect(address=("127.0.0.1", port), use_ssl=False, force_starttls=False, disable_starttls=True)
    bot.process(forever=False)


if __name__ == "__main__":
    main()
