"""The contract of the AaltoHub crawler: events, subjects, stream config, ids, codec, migrations."""
