//! The signing-key lifecycle `next → active → retired`, as a pure decision: the keys that
//! exist and the time go in, the actions to take and when to look again come out.
//!
//! A key is published (in the JWKS) as `next` for at least [`RotationPolicy::publish_delay`]
//! (the JWKS cache lifetime) before it signs anything, so no relying party with a cached
//! JWKS meets a token whose `kid` it has not seen. A retired key stays published for
//! [`RotationPolicy::retire_after`] (the longest lifetime of a token it signed), then goes.

use crate::keys::KeyPhase;

/// A key as the controller finds it (in a labelled Secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyState {
    /// Name of the Secret holding the key.
    pub name: String,
    pub phase: KeyPhase,
    /// Seconds since the epoch.
    pub created_at: u64,
    pub activated_at: Option<u64>,
    pub retired_at: Option<u64>,
}

/// The times that govern rotation, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// How long a key signs before the next one takes over.
    pub rotation_period: u64,
    /// How long a `next` key is published before it may sign.
    pub publish_delay: u64,
    /// How long a retired key stays published.
    pub retire_after: u64,
}

/// One step towards the desired key set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAction {
    /// Generate a key in this phase.
    Generate(KeyPhase),
    /// Make the named `next` key the signer.
    Activate(String),
    /// Stop signing with the named key; keep it published.
    Retire(String),
    /// Unpublish and delete the named retired key.
    Delete(String),
}

/// What to do now, and when to look again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationPlan {
    pub actions: Vec<KeyAction>,
    /// When the plan changes next (seconds since the epoch); `now` means "right after applying".
    pub next_check: u64,
    /// When the active key is due to be replaced, if there is one.
    pub next_rotation: Option<u64>,
}

/// Decides the next steps of the lifecycle. `rotate_requested` asks for a rotation now
/// (still waiting for the next key to have been published long enough).
pub fn plan_rotation(now: u64, keys: &[KeyState], policy: RotationPolicy, rotate_requested: bool) -> RotationPlan {
    let mut actions = Vec::new();
    let mut next_check;
    let mut actives: Vec<&KeyState> = keys.iter().filter(|k| k.phase == KeyPhase::Active).collect();
    actives.sort_by_key(|k| std::cmp::Reverse(k.activated_at.unwrap_or(k.created_at)));
    let mut nexts: Vec<&KeyState> = keys.iter().filter(|k| k.phase == KeyPhase::Next).collect();
    nexts.sort_by_key(|k| k.created_at);

    // More than one signer can only come from an interrupted rotation: keep the newest.
    for extra in actives.iter().skip(1) {
        actions.push(KeyAction::Retire(extra.name.clone()));
    }
    let mut next_rotation = None;
    match (actives.first(), nexts.first()) {
        // Nothing signs yet, so nothing can have cached a JWKS without the key: start at once.
        (None, Some(next)) => {
            actions.push(KeyAction::Activate(next.name.clone()));
            next_check = now;
        }
        (None, None) => {
            actions.push(KeyAction::Generate(KeyPhase::Active));
            next_check = now;
        }
        (Some(active), next) => {
            let due = active.activated_at.unwrap_or(active.created_at).saturating_add(policy.rotation_period);
            next_rotation = Some(due);
            let rotate = rotate_requested || now >= due;
            match next {
                None => {
                    actions.push(KeyAction::Generate(KeyPhase::Next));
                    next_check = now;
                }
                Some(next) => {
                    let publishable_at = next.created_at.saturating_add(policy.publish_delay);
                    if rotate && now >= publishable_at {
                        actions.push(KeyAction::Activate(next.name.clone()));
                        actions.push(KeyAction::Retire(active.name.clone()));
                        next_check = now;
                    } else if rotate {
                        next_check = publishable_at;
                    } else {
                        next_check = due;
                    }
                }
            }
        }
    }
    for retired in keys.iter().filter(|k| k.phase == KeyPhase::Retired) {
        let expires = retired.retired_at.unwrap_or(retired.created_at).saturating_add(policy.retire_after);
        if now >= expires {
            actions.push(KeyAction::Delete(retired.name.clone()));
        } else {
            next_check = next_check.min(expires);
        }
    }
    RotationPlan { actions, next_check, next_rotation }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RotationPolicy = RotationPolicy { rotation_period: 1000, publish_delay: 100, retire_after: 300 };

    fn key(
        name: &str,
        phase: KeyPhase,
        created_at: u64,
        activated_at: Option<u64>,
        retired_at: Option<u64>,
    ) -> KeyState {
        KeyState { name: name.into(), phase, created_at, activated_at, retired_at }
    }

    #[test]
    fn first_key_is_generated_active_then_a_next_key_is_published() {
        let plan = plan_rotation(10, &[], POLICY, false);
        assert_eq!(plan.actions, vec![KeyAction::Generate(KeyPhase::Active)]);
        let plan = plan_rotation(10, &[key("a", KeyPhase::Active, 10, Some(10), None)], POLICY, false);
        assert_eq!(plan.actions, vec![KeyAction::Generate(KeyPhase::Next)]);
        assert_eq!(plan.next_rotation, Some(1010));
    }

    #[test]
    fn nothing_happens_until_the_rotation_is_due() {
        let keys = [key("a", KeyPhase::Active, 0, Some(0), None), key("b", KeyPhase::Next, 5, None, None)];
        let plan = plan_rotation(500, &keys, POLICY, false);
        assert!(plan.actions.is_empty());
        assert_eq!(plan.next_check, 1000);
    }

    #[test]
    fn at_rotation_time_next_becomes_active_and_active_retires() {
        let keys = [key("a", KeyPhase::Active, 0, Some(0), None), key("b", KeyPhase::Next, 5, None, None)];
        let plan = plan_rotation(1000, &keys, POLICY, false);
        assert_eq!(plan.actions, vec![KeyAction::Activate("b".into()), KeyAction::Retire("a".into())]);
    }

    #[test]
    fn a_next_key_signs_only_after_it_was_published_for_the_jwks_cache_lifetime() {
        let keys = [key("a", KeyPhase::Active, 0, Some(0), None), key("b", KeyPhase::Next, 950, None, None)];
        let plan = plan_rotation(1000, &keys, POLICY, false);
        assert!(plan.actions.is_empty());
        assert_eq!(plan.next_check, 1050);
        let plan = plan_rotation(1050, &keys, POLICY, false);
        assert_eq!(plan.actions, vec![KeyAction::Activate("b".into()), KeyAction::Retire("a".into())]);
    }

    #[test]
    fn a_requested_rotation_happens_before_the_period_ends() {
        let keys = [key("a", KeyPhase::Active, 0, Some(0), None), key("b", KeyPhase::Next, 5, None, None)];
        let plan = plan_rotation(200, &keys, POLICY, true);
        assert_eq!(plan.actions, vec![KeyAction::Activate("b".into()), KeyAction::Retire("a".into())]);
    }

    #[test]
    fn retired_keys_stay_published_until_their_tokens_expired() {
        let keys = [
            key("b", KeyPhase::Active, 5, Some(1000), None),
            key("c", KeyPhase::Next, 1000, None, None),
            key("a", KeyPhase::Retired, 0, Some(0), Some(1000)),
        ];
        let plan = plan_rotation(1299, &keys, POLICY, false);
        assert!(plan.actions.is_empty());
        assert_eq!(plan.next_check, 1300);
        let plan = plan_rotation(1300, &keys, POLICY, false);
        assert_eq!(plan.actions, vec![KeyAction::Delete("a".into())]);
    }

    #[test]
    fn without_an_active_key_the_oldest_next_key_signs_at_once() {
        let keys = [key("b", KeyPhase::Next, 7, None, None), key("c", KeyPhase::Next, 9, None, None)];
        assert_eq!(plan_rotation(8, &keys, POLICY, false).actions, vec![KeyAction::Activate("b".into())]);
    }

    #[test]
    fn two_active_keys_keep_only_the_newest() {
        let keys = [key("a", KeyPhase::Active, 0, Some(0), None), key("b", KeyPhase::Active, 5, Some(900), None)];
        let plan = plan_rotation(901, &keys, POLICY, false);
        assert_eq!(plan.actions, vec![KeyAction::Retire("a".into()), KeyAction::Generate(KeyPhase::Next)]);
    }
}
