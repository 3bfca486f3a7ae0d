# moto's DynamoDB-API server, as the tacos tests and benchmarks start it:
#   python3 moto_server.py -H 127.0.0.1 -p PORT
# Two changes to how moto runs, neither to what it answers:
# - Requests are handled one at a time. moto's server is threaded, and its
#   backend does not lock, so two TransactWriteItems could interleave their
#   condition checks and writes; DynamoDB never lets that happen.
# - A transaction backs its table up once, not once per item: moto deep-copies
#   the whole table for every item it is given (to roll back on failure), which
#   makes a 6-item hold on a table of a thousand items take a tenth of a second.
import copy
import threading

import moto.core.responses as responses
import moto.dynamodb.models as dynamodb
from moto.server import main

_one_at_a_time = threading.Lock()
_dispatch = responses.BaseResponse._dispatch


def _serialised(self, *args, **kwargs):
    with _one_at_a_time:
        return _dispatch(self, *args, **kwargs)


responses.BaseResponse._dispatch = _serialised


class _BackupOnce:
    """`copy` for moto's DynamoDB backend: inside a transaction, the same
    table deep-copied again is the copy already made (nothing is written
    between those copies, so they are equal)."""

    def __init__(self):
        self.copies = None

    def deepcopy(self, x, memo=None):
        if self.copies is None:
            return copy.deepcopy(x, memo)
        if id(x) not in self.copies:
            self.copies[id(x)] = copy.deepcopy(x)
        return self.copies[id(x)]

    def __getattr__(self, name):
        return getattr(copy, name)


_backup = _BackupOnce()
dynamodb.copy = _backup
_transact = dynamodb.DynamoDBBackend.transact_write_items


def _transact_write_items(self, *args, **kwargs):
    _backup.copies = {}
    try:
        return _transact(self, *args, **kwargs)
    finally:
        _backup.copies = None


dynamodb.DynamoDBBackend.transact_write_items = _transact_write_items

if __name__ == "__main__":
    main()
