//! The consent library, and patients signing and withdrawing consent.
//!
//! [`missing_consents`] lists what a patient must agree to before the next program step: every
//! required document must be signed at its current version and not withdrawn. The enrolment
//! pathway checks it before recording consent and before each later step.

use std::collections::BTreeMap;

use stillpoint_domain::audit::{AuditAction, AuditOutcome};
use stillpoint_domain::consent::{self, ConsentDocument, ConsentRecord, ConsentState};
use stillpoint_domain::{Account, InvalidValue, Language, Patient, PatientId, Role};

use crate::audit::{self, AuditContext, AuditEntry};
use crate::ports::Store;
use crate::{AppError, Clock, StorageError};

/// Every consent document in every language, checked for consistency when loaded.
#[derive(Debug, Clone, Default)]
pub struct ConsentLibrary {
    /// Documents by id, then by language tag.
    documents: BTreeMap<String, BTreeMap<String, ConsentDocument>>,
}

impl ConsentLibrary {
    /// Builds the library from `(path, text)` pairs, where a path is `<id>/<language>.md`. The id
    /// and language in each file must match its path, and every language of a document must
    /// have the same version and `required` flag.
    pub fn from_files(
        files: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, InvalidValue> {
        let mut documents: BTreeMap<String, BTreeMap<String, ConsentDocument>> = BTreeMap::new();
        for (path, text) in files {
            let document = ConsentDocument::parse(&path, &text)?;
            let expected = format!("{}/{}.md", document.id, document.language);
            if path != expected {
                return Err(InvalidValue::new(
                    "consent document",
                    format!("{path}: the id and language say the file belongs at {expected}"),
                ));
            }
            let languages = documents.entry(document.id.clone()).or_default();
            if let Some(other) = languages.values().next()
                && (other.version != document.version || other.required != document.required)
            {
                return Err(InvalidValue::new(
                    "consent document",
                    format!(
                        "{path}: version and required must be the same in every language of '{}'",
                        document.id
                    ),
                ));
            }
            languages.insert(document.language.to_string(), document);
        }
        Ok(Self { documents })
    }

    /// Lists the document ids, required ones first, each group in alphabetical order.
    #[must_use]
    pub fn ids(&self) -> Vec<&str> {
        let mut ids: Vec<(&str, bool)> = self
            .documents
            .iter()
            .filter_map(|(id, languages)| {
                languages
                    .values()
                    .next()
                    .map(|document| (id.as_str(), document.required))
            })
            .collect();
        ids.sort_by_key(|(id, required)| (!required, *id));
        ids.into_iter().map(|(id, _)| id).collect()
    }

    /// Returns the document in `language`, else in English, else in any language.
    #[must_use]
    pub fn document(&self, id: &str, language: &Language) -> Option<&ConsentDocument> {
        let languages = self.documents.get(id)?;
        languages
            .get(language.as_str())
            .or_else(|| languages.get(language.primary()))
            .or_else(|| languages.get("en"))
            .or_else(|| languages.values().next())
    }

    fn required_ids(&self) -> Vec<(&str, u32)> {
        self.documents
            .iter()
            .filter_map(|(id, languages)| languages.values().next().map(|doc| (id, doc)))
            .filter(|(_, document)| document.required)
            .map(|(id, document)| (id.as_str(), document.version))
            .collect()
    }
}

/// One document on a patient's consent page, with the patient's records of it.
#[derive(Debug, Clone)]
pub struct ConsentItem {
    pub document: ConsentDocument,
    pub state: ConsentState,
    /// Every record of this document, newest first.
    pub history: Vec<ConsentRecord>,
}

/// Lists every document with the patient's state, in `language`.
pub async fn overview(
    store: &dyn Store,
    library: &ConsentLibrary,
    patient: PatientId,
    language: &Language,
) -> Result<Vec<ConsentItem>, AppError> {
    let records = store.consent_records_of_patient(patient).await?;
    Ok(library
        .ids()
        .into_iter()
        .filter_map(|id| library.document(id, language))
        .map(|document| {
            let history: Vec<ConsentRecord> = records
                .iter()
                .filter(|record| record.document_id == document.id)
                .cloned()
                .collect();
            ConsentItem {
                state: consent::consent_state(document.version, history.first()),
                document: document.clone(),
                history,
            }
        })
        .collect())
}

/// Lists the patient's own consent documents, audited as a read of their consent records.
pub async fn own_overview(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    library: &ConsentLibrary,
    account: &Account,
    language: &Language,
) -> Result<Vec<ConsentItem>, AppError> {
    let patient = own_patient(store, account).await?;
    record(store, clock, context, patient.id, AuditAction::Read, "all").await?;
    overview(store, library, patient.id, language).await
}

/// Returns whether the patient signed in as `account` still needs to agree to a required
/// document, for their home page. The read of their consent records is audited.
pub async fn own_consent_needed(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    library: &ConsentLibrary,
    account: &Account,
) -> Result<bool, AppError> {
    let Some(patient) = crate::patients::own_record_id(store, account).await? else {
        return Ok(false);
    };
    record(store, clock, context, patient, AuditAction::Read, "all").await?;
    Ok(!missing_consents(store, library, patient).await?.is_empty())
}

/// Ids of the required documents the patient has not consented to at their current version.
pub async fn missing_consents(
    store: &dyn Store,
    library: &ConsentLibrary,
    patient: PatientId,
) -> Result<Vec<String>, AppError> {
    let records = store.consent_records_of_patient(patient).await?;
    Ok(library
        .required_ids()
        .into_iter()
        .filter(|(id, version)| {
            let latest = records.iter().find(|record| record.document_id == *id);
            consent::consent_state(*version, latest) != ConsentState::Current
        })
        .map(|(id, _)| id.to_owned())
        .collect())
}

/// A patient's signature as submitted: which document, in which language it was read, and the
/// name typed.
#[derive(Debug, Clone, Copy)]
pub struct Signature<'a> {
    pub document_id: &'a str,
    pub language: &'a Language,
    pub typed_name: &'a str,
}

/// Records the patient's signature of the current version of a document, in the language they
/// read it in.
pub async fn sign(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    library: &ConsentLibrary,
    account: &Account,
    signature: Signature<'_>,
) -> Result<ConsentRecord, AppError> {
    let Signature {
        document_id,
        language,
        typed_name,
    } = signature;
    let patient = own_patient(store, account).await?;
    let document =
        library
            .document(document_id, language)
            .ok_or_else(|| StorageError::NotFound {
                entity: "consent document",
                id: document_id.to_owned(),
            })?;
    let signed_name = consent::validate_signature(typed_name, &patient.family_name)?;
    let current = store
        .consent_records_of_patient(patient.id)
        .await?
        .into_iter()
        .find(|record| record.document_id == document.id);
    if consent::consent_state(document.version, current.as_ref()) == ConsentState::Current {
        return Err(InvalidValue::new(
            "document",
            "you have already agreed to this version of the document",
        )
        .into());
    }

    let consent_record = ConsentRecord {
        patient_id: patient.id,
        document_id: document.id.clone(),
        version: document.version,
        language: document.language.clone(),
        content_hash: document.content_hash.clone(),
        signed_name,
        signed_at: clock.now(),
        signer: account.id,
        withdrawn_at: None,
        withdrawal_reason: None,
    };
    store.insert_consent_record(&consent_record).await?;
    record(
        store,
        clock,
        context,
        patient.id,
        AuditAction::Create,
        &document.id,
    )
    .await?;
    tracing::info!(patient_id = %patient.id, document = %document.id, version = document.version, "consent signed");
    Ok(consent_record)
}

/// Withdraws the patient's consent to `document_id`, effective at once.
pub async fn withdraw(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    document_id: &str,
    reason: &str,
) -> Result<(), AppError> {
    let patient = own_patient(store, account).await?;
    let reason = consent::validate_withdrawal_reason(reason)?;
    if !store
        .withdraw_consent(patient.id, document_id, clock.now(), reason.as_deref())
        .await?
    {
        return Err(InvalidValue::new(
            "document",
            "there is no consent to withdraw for this document",
        )
        .into());
    }
    record(
        store,
        clock,
        context,
        patient.id,
        AuditAction::Update,
        document_id,
    )
    .await?;
    if document_id == consent::CAREGIVER_SHARING {
        let revoked = crate::care::revoke_all_caregivers(store, clock, context, &patient).await?;
        tracing::info!(patient_id = %patient.id, revoked, "caregiver grants ended with the consent");
    }
    tracing::info!(patient_id = %patient.id, document = document_id, "consent withdrawn");
    Ok(())
}

async fn own_patient(store: &dyn Store, account: &Account) -> Result<Patient, AppError> {
    if !account.has_role(Role::Patient) {
        return Err(AppError::Forbidden);
    }
    store
        .find_patient_for_account(account.id)
        .await
        .map_err(|error| match error {
            StorageError::NotFound { .. } => AppError::Forbidden,
            other => other.into(),
        })
}

async fn record(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    patient: PatientId,
    action: AuditAction,
    document_id: &str,
) -> Result<(), AppError> {
    let entry = AuditEntry {
        patient: Some(patient),
        resource_type: "Consent",
        resource_id: Some(document_id.to_owned()),
        action,
        outcome: AuditOutcome::Success,
        break_glass: false,
    };
    audit::record(store, clock, context, entry).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(id: &str, language: &str, version: u32, required: bool) -> (String, String) {
        (
            format!("{id}/{language}.md"),
            format!(
                "+++\nid = \"{id}\"\nversion = {version}\nlanguage = \"{language}\"\ntitle = \"T\"\nsummary = \"S\"\nrequired = {required}\n+++\nText.\n"
            ),
        )
    }

    #[test]
    fn library_order_and_fallback() {
        let library = ConsentLibrary::from_files([
            file("b-required", "en", 1, true),
            file("a-optional", "en", 1, false),
            file("b-required", "es", 1, true),
        ])
        .expect("valid");
        assert_eq!(library.ids(), vec!["b-required", "a-optional"]);
        let french = Language::parse("fr").expect("valid");
        let document = library.document("b-required", &french).expect("fallback");
        assert_eq!(document.language.as_str(), "en");
        assert_eq!(library.required_ids(), vec![("b-required", 1)]);
    }

    #[test]
    fn library_rejects_inconsistent_files() {
        let misplaced =
            ConsentLibrary::from_files([("other/en.md".to_owned(), file("x", "en", 1, true).1)]);
        assert!(misplaced.is_err());
        let versions =
            ConsentLibrary::from_files([file("x", "en", 1, true), file("x", "es", 2, true)]);
        let error = versions.expect_err("versions differ");
        assert!(
            error.problem.contains("every language"),
            "{}",
            error.problem
        );
    }
}
