//! The functions' AWS credentials: the variables Lambda sets, and aws-config's default
//! chain only if they are missing, built when first needed.
//!
//! aws-config's default chain, built eagerly by `ConfigLoader::load`, makes its
//! web-identity provider's STS client at once, and an SDK client's construction builds its
//! HTTPS connector, which reads and parses every root certificate of the host: at a cold
//! start, for a provider that a Lambda function never uses (Lambda puts the execution
//! role's credentials in `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
//! `AWS_SESSION_TOKEN`, the chain's first source). The order of sources is the default
//! chain's; only the building of the rest waits until the environment has none.

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::environment::credentials::EnvironmentVariableCredentialsProvider;
use aws_config::Region;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use tokio::sync::OnceCell;

/// Environment variables first, then the rest of the default chain, made on first use.
#[derive(Debug)]
pub struct EnvThenDefaultChain {
    environment: SharedCredentialsProvider,
    region: Option<Region>,
    rest: OnceCell<DefaultCredentialsChain>,
}

impl EnvThenDefaultChain {
    /// `region` is the one the default chain's STS and SSO providers would sign in to.
    pub fn new(region: Option<Region>) -> Self {
        Self::with_environment(EnvironmentVariableCredentialsProvider::new(), region)
    }

    /// With `environment` in place of the environment variables' provider (tests).
    pub fn with_environment(environment: impl ProvideCredentials + 'static, region: Option<Region>) -> Self {
        Self {
            environment: SharedCredentialsProvider::new(environment),
            region,
            rest: OnceCell::new(),
        }
    }

    async fn provide(&self) -> aws_credential_types::provider::Result {
        match self.environment.provide_credentials().await {
            Err(CredentialsError::CredentialsNotLoaded(_)) => {}
            found => return found,
        }
        let rest = self
            .rest
            .get_or_init(|| async {
                let mut builder = DefaultCredentialsChain::builder();
                if let Some(region) = &self.region {
                    builder = builder.region(region.clone());
                }
                builder.build().await
            })
            .await;
        rest.provide_credentials().await
    }
}

impl ProvideCredentials for EnvThenDefaultChain {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.provide())
    }
}

/// The region of the default region chain (`AWS_REGION` in Lambda), for
/// [`EnvThenDefaultChain::new`].
pub async fn default_region() -> Option<Region> {
    aws_config::default_provider::region::DefaultRegionChain::builder()
        .build()
        .region()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;

    #[tokio::test]
    async fn the_environment_s_credentials_are_used_and_nothing_else_is_built() {
        let from_environment = Credentials::new("ASIAEXAMPLE", "secret", Some("token".into()), None, "environment");
        let provider = EnvThenDefaultChain::with_environment(from_environment, Some(Region::new("us-east-1")));
        let credentials = provider.provide_credentials().await.expect("credentials");
        assert_eq!(credentials.access_key_id(), "ASIAEXAMPLE");
        assert_eq!(credentials.session_token(), Some("token"));
        assert!(provider.rest.get().is_none(), "the default chain was built");
    }
}
