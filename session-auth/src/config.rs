//! Django's auth settings, as far as sessions are concerned.

use crate::AuthError;
use crate::password::PasswordConfig;

/// Django's `ModelBackend` path, the default and usual `AUTHENTICATION_BACKENDS` entry.
pub const MODEL_BACKEND: &str = "django.contrib.auth.backends.ModelBackend";

/// Django's `AllowAllUsersModelBackend` path: like `ModelBackend`, but inactive users are allowed.
pub const ALLOW_ALL_USERS_MODEL_BACKEND: &str =
    "django.contrib.auth.backends.AllowAllUsersModelBackend";

/// One `AUTHENTICATION_BACKENDS` entry whose users this crate serves from a
/// [`UserSource`](crate::UserSource).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthBackend {
    /// The dotted path stored in `_auth_user_backend`.
    pub path: String,
    /// Whether users with `is_active = false` are served (`AllowAllUsersModelBackend`'s
    /// `user_can_authenticate` returns `True`; `ModelBackend`'s returns `is_active`).
    pub allow_inactive: bool,
}

impl AuthBackend {
    /// `django.contrib.auth.backends.ModelBackend`: inactive users are refused.
    pub fn model_backend() -> Self {
        AuthBackend {
            path: MODEL_BACKEND.to_owned(),
            allow_inactive: false,
        }
    }

    /// `django.contrib.auth.backends.AllowAllUsersModelBackend`: inactive users are served.
    pub fn allow_all_users_model_backend() -> Self {
        AuthBackend {
            path: ALLOW_ALL_USERS_MODEL_BACKEND.to_owned(),
            allow_inactive: true,
        }
    }
}

/// What a handler that requires a user answers when there is none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Unauthenticated {
    /// `401 Unauthorized` (what an API wants).
    #[default]
    Unauthorized,
    /// A `302` to [`AuthConfig::login_url`] with the requested path in the `next` parameter, as
    /// Django's `login_required` / `LoginRequiredMixin` do (`redirect_to_login`).
    RedirectToLogin,
}

/// Django's auth settings this crate follows. [`AuthConfig::default`] is Django 5.2's defaults.
///
/// The secret keys are not here: the session auth hash is computed with `SECRET_KEY` and
/// `SECRET_KEY_FALLBACKS`, which are the session's (`SessionConfig::secret_key` and
/// `secret_key_fallbacks`), as in Django.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// `AUTHENTICATION_BACKENDS` served by the user source (default: `ModelBackend` only). A
    /// session naming another backend is anonymous, as Django treats a backend path that is not
    /// in the setting.
    pub backends: Vec<AuthBackend>,
    /// `CSRF_USE_SESSIONS`: the CSRF secret lives in the session under `_csrftoken`, so `login`
    /// rotates it there (default false: it lives in the `csrftoken` cookie, and `login` returns
    /// the new secret for the caller to set).
    pub csrf_use_sessions: bool,
    /// `LOGIN_URL` (default `/accounts/login/`).
    pub login_url: String,
    /// The query parameter carrying the requested path (`REDIRECT_FIELD_NAME`, default `next`);
    /// `None` sends no parameter.
    pub redirect_field_name: Option<String>,
    /// What the `AuthUser` extractor answers without a user (default 401).
    pub unauthenticated: Unauthenticated,
    /// `PASSWORD_HASHERS` and the iteration count.
    pub passwords: PasswordConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            backends: vec![AuthBackend::model_backend()],
            csrf_use_sessions: false,
            login_url: "/accounts/login/".to_owned(),
            redirect_field_name: Some("next".to_owned()),
            unauthenticated: Unauthenticated::Unauthorized,
            passwords: PasswordConfig::default(),
        }
    }
}

impl AuthConfig {
    /// Checks the settings can work.
    ///
    /// # Errors
    /// [`AuthError::Config`] without backends, or with unusable password settings.
    pub fn validate(&self) -> Result<(), AuthError> {
        if self.backends.is_empty() {
            return Err(AuthError::Config(
                "no authentication backends: add AuthBackend::model_backend() (Django's \
                 AUTHENTICATION_BACKENDS)"
                    .to_owned(),
            ));
        }
        self.passwords.validate()
    }

    pub(crate) fn backend(&self, path: &str) -> Option<&AuthBackend> {
        self.backends.iter().find(|backend| backend.path == path)
    }
}
