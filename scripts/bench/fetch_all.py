#!/usr/bin/env python3
"""Fetches the three files of every device from zerotouch the way the benchmarks' wrk
script asks for them (a phone that tags its User-Agent with its MAC, Basic credentials),
twice (the first pass delivers pending values, the second is the steady state the
benchmark then measures), and writes the second pass's bytes under ROOT so nginx serves
exactly the same files. With --check it fetches once and compares with ROOT instead: the
files zerotouch serves after the runs must still be the ones nginx served (exit status 1
and the count when not).
Usage: fetch_all.py [--https CA_FILE] [--check] HOST:PORT USER PASSWORD COUNT ROOT"""
import base64, http.client, os, ssl, sys

args = sys.argv[1:]
ca = None
check = False
while args and args[0].startswith("--"):
    opt = args.pop(0)
    if opt == "--https":
        ca = args.pop(0)
    elif opt == "--check":
        check = True
    else:
        sys.exit("unknown option " + opt)
hostport, user, password, count, root = args[0], args[1], args[2], int(args[3]), args[4]
host, port = hostport.rsplit(":", 1)
auth = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
if ca:
    conn = http.client.HTTPSConnection(host, int(port), context=ssl.create_default_context(cafile=ca))
else:
    conn = http.client.HTTPConnection(host, int(port))
os.makedirs(root, exist_ok=True)
differ = 0
for rnd in ([1] if check else [0, 1]):
    for i in range(count):
        mac = "0004f2%06x" % i
        ua = "FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614 (SN:%s) Type/Application" % mac
        for name in ("%s.cfg" % mac, "%s-device.cfg" % mac, "%s-profile.cfg" % mac):
            conn.request("GET", "/" + name, headers={"Authorization": auth, "User-Agent": ua, "Host": hostport})
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                sys.exit("GET /%s: %d %s" % (name, r.status, body[:200]))
            path = os.path.join(root, name)
            if check:
                with open(path, "rb") as f:
                    if f.read() != body:
                        differ += 1
            elif rnd == 1:
                with open(path, "wb") as f:
                    f.write(body)
if check:
    print("%d of %d files differ from what nginx served" % (differ, 3 * count))
    sys.exit(1 if differ else 0)
print("fetched %d files" % (3 * count))
