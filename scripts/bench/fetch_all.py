#!/usr/bin/env python3
"""Fetches the three files of every device from zerotouch, the way a phone that already
tags its User-Agent with its MAC does, twice (the second pass is the steady state), and
writes the bytes under ROOT so nginx can serve exactly the same files.
Usage: fetch_all.py HOST:PORT USER PASSWORD COUNT ROOT"""
import base64, http.client, os, sys

hostport, user, password, count, root = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
host, port = hostport.rsplit(":", 1)
auth = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
conn = http.client.HTTPConnection(host, int(port))
os.makedirs(root, exist_ok=True)
for rnd in range(2):
    for i in range(count):
        mac = "0004f2%06x" % i
        ua = "FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614 (SN:%s) Type/Application" % mac
        for name in ("%s.cfg" % mac, "%s-device.cfg" % mac, "%s-profile.cfg" % mac):
            conn.request("GET", "/" + name, headers={"Authorization": auth, "User-Agent": ua})
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                sys.exit("GET /%s: %d %s" % (name, r.status, body[:200]))
            if rnd == 1:
                with open(os.path.join(root, name), "wb") as f:
                    f.write(body)
print("fetched %d files" % (3 * count))
