//! Every word a person reads on the pages, in one place. Templates and handlers take a
//! [`Text`] instead of literals, so a catalogue picked from `ui_locales` (OIDC Core
//! §3.1.2.1) can replace English without touching them. English is the only one shipped.

use std::borrow::Cow;

/// One language's page text. Phrases around a bold name (`login_lead`, `consent_lead`,
/// `logout_asked_by`) are split before/after it so other word orders fit.
#[derive(Debug)]
pub struct Text {
    /// The BCP 47 tag of this text, for `<html lang>`.
    pub lang: &'static str,
    pub product: &'static str,

    pub login_title: &'static str,
    pub login_lead: &'static str,
    pub username_label: &'static str,
    pub password_label: &'static str,
    pub sign_in_button: &'static str,
    /// One message for a wrong password, an unknown user and a disabled user alike, so the
    /// page does not reveal which usernames exist.
    pub wrong_credentials: &'static str,
    /// Before a connector's display name on its button.
    pub continue_with: &'static str,
    /// Between the upstream buttons and the password form.
    pub or_sign_in_with_password: &'static str,
    /// Around a directory connector's display name above its password form.
    pub directory_lead_before: &'static str,
    pub directory_lead_after: &'static str,
    /// A directory connector's directory could not be reached or answered unexpectedly.
    pub directory_unavailable: &'static str,
    pub upstream_failed_title: &'static str,
    pub upstream_failed: &'static str,
    pub upstream_refused_title: &'static str,
    /// The upstream answered that the person did not sign in (they cancelled, or it asked
    /// for an interaction it could not have), on the device page, which has no client to
    /// send `access_denied` to.
    pub upstream_denied: &'static str,
    pub throttled: &'static str,

    pub consent_title: &'static str,
    pub consent_lead_after: &'static str,
    pub consent_signed_in_as: &'static str,
    pub consent_return_to: &'static str,
    pub consent_trust: &'static str,
    pub allow_button: &'static str,
    pub deny_button: &'static str,

    pub device_title: &'static str,
    pub device_lead: &'static str,
    pub user_code_label: &'static str,
    pub user_code_hint: &'static str,
    /// One message for a code that does not exist, has expired or was used, so the page
    /// tells a guesser nothing.
    pub wrong_user_code: &'static str,
    pub user_code_throttled: &'static str,
    pub device_consent_lead_after: &'static str,
    pub device_code_shown: &'static str,
    pub device_code_check: &'static str,
    pub device_approved_title: &'static str,
    pub device_approved: &'static str,
    pub device_denied_title: &'static str,
    pub device_denied: &'static str,

    pub logout_title: &'static str,
    pub logout_heading: &'static str,
    pub logout_asked_by_after: &'static str,
    pub logout_explanation: &'static str,
    pub logout_button: &'static str,
    pub stay_signed_in_button: &'static str,

    pub logged_out_title: &'static str,
    pub logged_out_heading: &'static str,
    pub close_page: &'static str,
    /// Above the (invisible) frames of Front-Channel Logout.
    pub frontchannel_lead: &'static str,
    pub frontchannel_frame_title: &'static str,

    pub account_title: &'static str,
    /// Where the sign-in form of the account page continues to, after `login_lead`.
    pub account_destination: &'static str,
    pub account_signed_in_as: &'static str,
    pub account_applications: &'static str,
    pub account_applications_lead: &'static str,
    pub account_no_applications: &'static str,
    pub revoke_access_button: &'static str,
    pub account_sessions: &'static str,
    pub account_this_browser: &'static str,
    pub account_other_browser: &'static str,
    pub account_signed_in_at: &'static str,
    pub account_ends_at: &'static str,
    pub sign_out_session_button: &'static str,

    pub form_post_title: &'static str,
    pub form_post_lead: &'static str,
    pub continue_button: &'static str,

    pub error_next_step: &'static str,
    pub invalid_request_title: &'static str,
    pub unknown_client_title: &'static str,
    pub unknown_client: &'static str,
    pub expired_title: &'static str,
    pub expired: &'static str,
    pub choose_allow_or_deny: &'static str,
    pub server_error_title: &'static str,
    pub server_error: &'static str,
    pub invalid_logout_title: &'static str,
    pub logout_bad_hint: &'static str,
    pub logout_client_mismatch: &'static str,
    pub still_signed_in_title: &'static str,
    pub form_refused_title: &'static str,
    pub form_refused: &'static str,
    pub unavailable_title: &'static str,
    pub unavailable: &'static str,
    pub bad_redirect_title: &'static str,
    pub bad_redirect: &'static str,

    pub scope_openid: &'static str,
    pub scope_profile: &'static str,
    pub scope_email: &'static str,
    pub scope_phone: &'static str,
    pub scope_address: &'static str,
    pub scope_groups: &'static str,
    pub scope_roles: &'static str,
    pub scope_offline_access: &'static str,
    /// Said of a scope with no description of its own; the scope's name follows.
    pub scope_other: &'static str,
    /// Before the claim names a custom scope releases.
    pub scope_custom_claims: &'static str,
}

/// English, the default language.
pub const ENGLISH: Text = Text {
    lang: "en",
    product: "Portcullis",

    login_title: "Sign in",
    login_lead: "to continue to",
    username_label: "Username",
    password_label: "Password",
    sign_in_button: "Sign in",
    wrong_credentials: "Incorrect username or password.",
    continue_with: "Continue with",
    or_sign_in_with_password: "or sign in with a password",
    directory_lead_before: "Sign in with your",
    directory_lead_after: "account.",
    upstream_denied: "The identity provider did not sign you in. Enter the code again to sign in another way.",
    directory_unavailable: "The directory cannot be reached right now. Try again in a moment, or go back to the application and sign in another way.",
    upstream_failed_title: "Sign-in failed",
    upstream_failed: "The identity provider you chose could not sign you in. Go back to the application and try again.",
    upstream_refused_title: "Access refused",
    throttled: "Too many failed sign-in attempts. Please wait a few minutes and try again.",

    consent_title: "Allow access?",
    consent_lead_after: "would like to:",
    consent_signed_in_as: "Signed in as",
    consent_return_to: "Either way, you will be sent back to",
    consent_trust: "Only allow applications you trust.",
    allow_button: "Allow",
    deny_button: "Deny",

    device_title: "Connect a device",
    device_lead: "Enter the code shown on your device.",
    user_code_label: "Device code",
    user_code_hint: "Eight letters, for example WDJB-MJHT.",
    wrong_user_code: "That code is not valid or has expired. Check the code on your device.",
    user_code_throttled: "Too many codes entered. Please wait a few minutes and try again.",
    device_consent_lead_after: "on a device would like to:",
    device_code_shown: "The device shows this code:",
    device_code_check: "Only allow if your own device shows this code. If someone sent you this code or link, deny.",
    device_approved_title: "Device connected",
    device_approved: "You can return to your device now.",
    device_denied_title: "Device not connected",
    device_denied: "The device was not given access. You can close this page now.",

    logout_title: "Sign out",
    logout_heading: "Sign out of Portcullis?",
    logout_asked_by_after: "asked to sign you out.",
    logout_explanation: "You will be signed out of every application that uses Portcullis on this browser.",
    logout_button: "Sign out",
    stay_signed_in_button: "Stay signed in",

    logged_out_title: "Signed out",
    logged_out_heading: "You are signed out.",
    close_page: "You can close this page now.",
    frontchannel_lead: "Signing you out of the applications you used too.",
    frontchannel_frame_title: "Signing out of an application",

    account_title: "Your account",
    account_destination: "your account",
    account_signed_in_as: "Signed in as",
    account_applications: "Applications",
    account_applications_lead: "Applications you allowed to use your account.",
    account_no_applications: "You have not allowed any application yet.",
    revoke_access_button: "Revoke access",
    account_sessions: "Sessions",
    account_this_browser: "This browser",
    account_other_browser: "Another browser or device",
    account_signed_in_at: "Signed in",
    account_ends_at: "ends",
    sign_out_session_button: "Sign out",

    form_post_title: "Returning to the application",
    form_post_lead: "Press Continue if you are not taken back to",
    continue_button: "Continue",

    error_next_step: "You can close this page and start again from the application you were using.",
    invalid_request_title: "Invalid request",
    unknown_client_title: "Unknown application",
    unknown_client: "No application is registered with this client_id.",
    expired_title: "This page has expired",
    expired: "Go back to the application and sign in again.",
    choose_allow_or_deny: "Choose Allow or Deny.",
    server_error_title: "Server error",
    server_error: "Something went wrong. Please try again.",
    invalid_logout_title: "Invalid logout request",
    logout_bad_hint: "The id_token_hint is not an ID token issued by this provider.",
    logout_client_mismatch: "client_id does not match the id_token_hint.",
    still_signed_in_title: "You are still signed in",
    form_refused_title: "Request refused",
    form_refused: "The form could not be verified. Go back to the application and try again.",
    unavailable_title: "Temporarily unavailable",
    unavailable: "Sign-in is temporarily unavailable. Please try again in a moment.",
    bad_redirect_title: "Invalid redirect URI",
    bad_redirect: "The application's redirect URI cannot be used in a redirect.",

    scope_openid: "Confirm who you are",
    scope_profile: "See your name and username",
    scope_email: "See your email address",
    scope_phone: "See your phone number",
    scope_address: "See your postal address",
    scope_groups: "See the groups you belong to",
    scope_roles: "See your roles and groups",
    scope_offline_access: "Keep access while you are away",
    scope_other: "Access",
    scope_custom_claims: "See your",
};

impl Text {
    /// The catalogue for a request's `ui_locales` (space-separated BCP 47 tags in order of
    /// preference). Only English ships, so every request gets English for now.
    pub fn for_ui_locales(_ui_locales: Option<&str>) -> &'static Self {
        &ENGLISH
    }

    /// What granting a scope means, in plain words for the consent page (OIDC Core §5.4,
    /// §11 for `offline_access`).
    /// A custom scope, by the claims it releases: "See your organization, department".
    pub fn describe_claims(&self, names: &[String]) -> String {
        format!("{} {}", self.scope_custom_claims, names.join(", "))
    }

    pub fn describe_scope<'a>(&self, scope: &'a str) -> Cow<'a, str> {
        match scope {
            "openid" => self.scope_openid.into(),
            "profile" => self.scope_profile.into(),
            "email" => self.scope_email.into(),
            "phone" => self.scope_phone.into(),
            "address" => self.scope_address.into(),
            "groups" => self.scope_groups.into(),
            "roles" => self.scope_roles.into(),
            "offline_access" => self.scope_offline_access.into(),
            other => format!("{} {other}", self.scope_other).into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_is_what_every_locale_gets_for_now() {
        assert_eq!(Text::for_ui_locales(None).lang, "en");
        assert_eq!(Text::for_ui_locales(Some("fr-CA fr en")).lang, "en");
    }

    #[test]
    fn scopes_are_described_in_plain_words() {
        let text = &ENGLISH;
        assert_eq!(text.describe_scope("openid"), "Confirm who you are");
        assert_eq!(text.describe_scope("profile"), "See your name and username");
        assert_eq!(text.describe_scope("email"), "See your email address");
        assert_eq!(text.describe_scope("roles"), "See your roles and groups");
        assert_eq!(text.describe_scope("phone"), "See your phone number");
        assert_eq!(text.describe_scope("address"), "See your postal address");
        assert_eq!(text.describe_scope("groups"), "See the groups you belong to");
        assert_eq!(text.describe_scope("offline_access"), "Keep access while you are away");
        assert_eq!(text.describe_scope("billing:read"), "Access billing:read");
        let names = ["organization".to_owned(), "department".to_owned()];
        assert_eq!(text.describe_claims(&names), "See your organization, department");
    }
}
