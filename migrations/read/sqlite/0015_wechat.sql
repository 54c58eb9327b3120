-- WeChat: which user an openid logs in (keyed by the openid's keyed hash, so
-- no openid is stored in clear), and the subscribe messages being pushed:
-- the push follower reads the queued ones and the failed ones due for a retry.
CREATE TABLE wechat_bindings
(
    openid_hash TEXT NOT NULL PRIMARY KEY,
    user_id     TEXT NOT NULL,
    bound_at    TEXT NOT NULL
) STRICT;
CREATE INDEX wechat_bindings_user ON wechat_bindings (user_id);

CREATE TABLE wechat_pushes
(
    id         TEXT    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    attempts   INTEGER NOT NULL,
    retry_at   TEXT,
    last_error TEXT,
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL
) STRICT;
CREATE INDEX wechat_pushes_due ON wechat_pushes (status, retry_at);
