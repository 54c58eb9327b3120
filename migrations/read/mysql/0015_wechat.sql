-- WeChat: which user an openid logs in (keyed by the openid's keyed hash, so
-- no openid is stored in clear), and the subscribe messages being pushed:
-- the push follower reads the queued ones and the failed ones due for a retry.
CREATE TABLE wechat_bindings
(
    openid_hash CHAR(64)    NOT NULL PRIMARY KEY,
    user_id     CHAR(36)    NOT NULL,
    bound_at    VARCHAR(40) NOT NULL,
    KEY wechat_bindings_user (user_id)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE wechat_pushes
(
    id         CHAR(36)    NOT NULL PRIMARY KEY,
    user_id    CHAR(36)    NOT NULL,
    kind       VARCHAR(40) NOT NULL,
    status     VARCHAR(16) NOT NULL,
    attempts   BIGINT      NOT NULL,
    retry_at   VARCHAR(40),
    last_error TEXT,
    created_at VARCHAR(40) NOT NULL,
    updated_at VARCHAR(40) NOT NULL,
    KEY wechat_pushes_due (status, retry_at)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
