"""The `pusher` PyPI server SDK against ringcast's Pusher HTTP API (server/tests/pusher_js.rs).

    python3 pusher_py.py HOST PORT auth SOCKET_ID CHANNEL [CHANNEL_DATA]
        prints the SDK's channel auth string for the socket (presence: with CHANNEL_DATA)
    python3 pusher_py.py HOST PORT api EXCLUDED_SOCKET_ID
        triggers `py-event` on private-py excluding the socket, a batch, then prints one
        JSON object with the answers of channels_info, channel_info and users_info, and
        checks that a bad secret gets 401
"""
import json
import sys

import pusher

host, port, phase = sys.argv[1], int(sys.argv[2]), sys.argv[3]
client = pusher.Pusher(app_id="1", key="key1", secret="secret1", host=host, port=port, ssl=False)

if phase == "auth":
    socket_id, channel = sys.argv[4], sys.argv[5]
    data = json.loads(sys.argv[6]) if len(sys.argv) > 6 else None
    print(json.dumps(client.authenticate(channel=channel, socket_id=socket_id, custom_data=data)))
    sys.exit(0)

excluded = sys.argv[4]
client.trigger(["private-py"], "py-event", {"n": 1}, socket_id=excluded)
client.trigger(["private-py"], "py-event", {"n": 2})
client.trigger_batch([{"channel": "private-py", "name": "py-batch", "data": "b"}])
out = {
    "channels": client.channels_info(prefix_filter="presence-", attributes=["user_count"]),
    "channel": client.channel_info("private-py", attributes=["subscription_count"]),
    "users": client.users_info("presence-py"),
}
wrong = pusher.Pusher(app_id="1", key="key1", secret="nope", host=host, port=port, ssl=False)
try:
    wrong.trigger(["private-py"], "x", {})
    out["bad_secret"] = "accepted"
except pusher.errors.PusherBadAuth:
    out["bad_secret"] = "401"
print(json.dumps(out))
