-- 0017: users scoped to accounts (issue 24 item 2) and the console's account switcher.
-- users.all_accounts: 1 — the user acts in every account with users.role (what every user
--   did before this migration, so existing users keep what they could do); 0 — the user
--   acts only in the accounts of user_accounts, with the role given there.
-- user_accounts: one row per account a scoped user may act in, with its role there.
-- users.current_account_id: the account the console acts on for this user (the switcher);
--   NULL or an account the user may not act in means the default account, else their first.
ALTER TABLE users ADD COLUMN all_accounts INTEGER NOT NULL DEFAULT 1
    CHECK (all_accounts IN (0, 1));
ALTER TABLE users ADD COLUMN current_account_id INTEGER
    REFERENCES accounts (id) ON DELETE SET NULL;
CREATE TABLE user_accounts (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role       TEXT    NOT NULL CHECK (role IN ('admin', 'provider', 'installer', 'viewer')),
    PRIMARY KEY (user_id, account_id)
);
CREATE INDEX user_accounts_account ON user_accounts (account_id);
