#!/usr/bin/env python3
"""Verify one webhook delivery with the reference Standard Webhooks library.

Reads {"secret": "whsec_…", "headers": {...}, "body": "..."} on stdin; prints
"verified" and exits 0 when the library accepts it, else prints why and
exits 1. The tests use it to show that a merchant's receiver built on the
reference library verifies what tacos sends, through a key rotation too.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook

request = json.load(sys.stdin)
try:
    Webhook(request["secret"]).verify(request["body"], request["headers"])
except Exception as e:  # the library raises its own error types
    print(f"refused: {e}")
    sys.exit(1)
print("verified")
