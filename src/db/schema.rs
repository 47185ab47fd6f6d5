//! The diesel schema, shared by both backends (the two migration sets create
//! the same tables with the same column types).

diesel::table! {
    accounts (id) {
        id -> Text,
        name -> Text,
        created_at -> Timestamp,
        reply_to -> Nullable<Text>,
        daily_invitations -> Nullable<BigInt>,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        account_id -> Text,
        key_hash -> Text,
        created_at -> Timestamp,
        name -> Text,
        scopes -> Text,
        prefix -> Nullable<Text>,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    budget_charges (id) {
        id -> Text,
        account_id -> Text,
        charged_at -> Timestamp,
        amount -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        account_id -> Text,
        email -> Text,
        email_key -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    imports (id) {
        id -> Text,
        account_id -> Text,
        filename -> Nullable<Text>,
        size_bytes -> BigInt,
        content_sha256 -> Text,
        idempotency_key -> Nullable<Text>,
        status -> Text,
        created_at -> Timestamp,
        completed_at -> Nullable<Timestamp>,
        entries -> BigInt,
        invalid -> BigInt,
        duplicate -> BigInt,
        existing_user -> BigInt,
        suppressed -> BigInt,
        already_invited -> BigInt,
        invited -> BigInt,
        queued -> BigInt,
        sent -> BigInt,
        failed -> BigInt,
        delivered -> BigInt,
        bounced -> BigInt,
        complained -> BigInt,
        accepted -> BigInt,
        expired -> BigInt,
        revoked -> BigInt,
        custom_message -> Nullable<Text>,
        expiry_days -> Nullable<Integer>,
        redirect_url -> Nullable<Text>,
        invited_by -> Nullable<Text>,
        locale -> Nullable<Text>,
        erased_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    import_entries (import_id, position) {
        import_id -> Text,
        position -> BigInt,
        line -> BigInt,
        raw -> Text,
        email -> Nullable<Text>,
        status -> Text,
        reason -> Nullable<Text>,
    }
}

diesel::table! {
    invitations (id) {
        id -> Text,
        account_id -> Text,
        import_id -> Text,
        position -> BigInt,
        email -> Text,
        email_key -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        batch_id -> Nullable<Text>,
        lease_owner -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamp>,
        token_hash -> Nullable<Text>,
        token_version -> Integer,
        provider_message_id -> Nullable<Text>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        expires_at -> Nullable<Timestamp>,
        accepted_at -> Nullable<Timestamp>,
        rendered_at -> Nullable<Timestamp>,
        rendered_expires_at -> Nullable<Timestamp>,
        maybe_sent -> Bool,
        rendered_account_name -> Nullable<Text>,
        rendered_reply_to -> Nullable<Text>,
    }
}

diesel::table! {
    suppressions (account_id, email_key) {
        account_id -> Text,
        email_key -> Text,
        email -> Text,
        reason -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    webhook_events (provider, event_id) {
        provider -> Text,
        event_id -> Text,
        received_at -> Timestamp,
    }
}

diesel::joinable!(api_keys -> accounts (account_id));
diesel::joinable!(budget_charges -> accounts (account_id));
diesel::joinable!(users -> accounts (account_id));
diesel::joinable!(imports -> accounts (account_id));
diesel::joinable!(import_entries -> imports (import_id));
diesel::joinable!(invitations -> imports (import_id));

diesel::allow_tables_to_appear_in_same_query!(
    accounts,
    api_keys,
    budget_charges,
    users,
    imports,
    import_entries,
    invitations,
    suppressions,
    webhook_events,
);
