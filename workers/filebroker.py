"""The embedded broker: kombu's file transport, with each message written atomically.

kombu's ``filesystem`` transport creates the message file under its final name and then writes
into it, so a consumer polling the folder can take the file while it is still empty and fail
with a JSON decode error (seen in ``selfmend demo``). Here a message is written to a hidden
temporary name in the same folder and renamed into place: a consumer sees a whole file or none.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: dict, **kwargs: object) -> None:
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.partial")
        try:
            with open(partial, "wb") as file:
                file.write(dumps(payload).encode())
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
