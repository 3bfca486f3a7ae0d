#!/usr/bin/env python3
"""Watch a tacos live route with the `websockets` library (a client nobody in
this project wrote): print each message as it arrives, one JSON document a
line, then how the host closed the socket as {"closed": CODE, "reason": TEXT}.

    ws-watch ws://127.0.0.1:8000/ws/queue/TOKEN?session_id=S
"""
import asyncio
import json
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


async def main(url: str) -> None:
    async with connect(url) as ws:
        try:
            async for message in ws:
                print(json.dumps(json.loads(message)), flush=True)
        except ConnectionClosed:
            pass
        print(json.dumps({"closed": ws.close_code, "reason": ws.close_reason}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
