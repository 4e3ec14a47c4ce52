//! Caregivers invited to sessions, room join and leave events, technology checks and external
//! meeting links.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use stillpoint_app::StorageError;
use stillpoint_app::ports::{LiveStore, RoomEvent, SessionGuest, TechCheck};
use stillpoint_domain::{AccountId, CohortId, CohortSessionId};

use crate::Database;
use crate::error::map_write_error;
use crate::values::{column, corrupt, from_millis, parse_column, to_millis};

fn flag(row: &AnyRow, name: &'static str) -> Result<bool, StorageError> {
    Ok(column::<i64>(row, name)? == 1)
}

fn tech_check(row: &AnyRow) -> Result<TechCheck, StorageError> {
    let round_trip: Option<i64> = column(row, "round_trip_ms")?;
    Ok(TechCheck {
        account: parse_column("account_id", &column::<String>(row, "account_id")?)?,
        camera_ok: flag(row, "camera_ok")?,
        microphone_ok: flag(row, "microphone_ok")?,
        speaker_ok: flag(row, "speaker_ok")?,
        connection_ok: flag(row, "connection_ok")?,
        round_trip_ms: round_trip
            .map(|value| u32::try_from(value).map_err(|error| corrupt("round_trip_ms", &error)))
            .transpose()?,
        checked_at: from_millis(column(row, "checked_at")?)?,
    })
}

#[async_trait]
impl LiveStore for Database {
    async fn put_session_guest(&self, guest: &SessionGuest) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO session_guests (session_id, caregiver_account_id, patient_id, invited_by, invited_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_id, caregiver_account_id) DO NOTHING",
        )
        .bind(guest.session.to_string())
        .bind(guest.caregiver.to_string())
        .bind(guest.patient.to_string())
        .bind(guest.invited_by.to_string())
        .bind(to_millis(guest.invited_at))
        .execute(&self.pool)
        .await
        .map_err(map_write_error)?;
        Ok(())
    }

    async fn session_guests(
        &self,
        session: CohortSessionId,
    ) -> Result<Vec<SessionGuest>, StorageError> {
        let rows = sqlx::query(
            "SELECT session_id, caregiver_account_id, patient_id, invited_by, invited_at \
             FROM session_guests WHERE session_id = $1 ORDER BY invited_at",
        )
        .bind(session.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(map_write_error)?;
        rows.iter().map(guest_from_row).collect()
    }

    async fn delete_session_guest(
        &self,
        session: CohortSessionId,
        caregiver: AccountId,
    ) -> Result<bool, StorageError> {
        let deleted = sqlx::query(
            "DELETE FROM session_guests WHERE session_id = $1 AND caregiver_account_id = $2",
        )
        .bind(session.to_string())
        .bind(caregiver.to_string())
        .execute(&self.pool)
        .await
        .map_err(map_write_error)?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn invitations_of_caregiver(
        &self,
        caregiver: AccountId,
    ) -> Result<Vec<SessionGuest>, StorageError> {
        let rows = sqlx::query(
            "SELECT session_id, caregiver_account_id, patient_id, invited_by, invited_at \
             FROM session_guests WHERE caregiver_account_id = $1 ORDER BY invited_at",
        )
        .bind(caregiver.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(map_write_error)?;
        rows.iter().map(guest_from_row).collect()
    }

    async fn insert_room_event(&self, event: &RoomEvent) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO room_events (session_id, account_id, event, happened_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(event.session.to_string())
        .bind(event.account.to_string())
        .bind(if event.entered { "entered" } else { "left" })
        .bind(to_millis(event.at))
        .execute(&self.pool)
        .await
        .map_err(map_write_error)?;
        Ok(())
    }

    async fn room_events(&self, session: CohortSessionId) -> Result<Vec<RoomEvent>, StorageError> {
        let rows = sqlx::query(
            "SELECT account_id, event, happened_at FROM room_events WHERE session_id = $1 \
             ORDER BY happened_at, id",
        )
        .bind(session.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(map_write_error)?;
        rows.iter()
            .map(|row| {
                let account: AccountId =
                    parse_column("account_id", &column::<String>(row, "account_id")?)?;
                Ok(RoomEvent {
                    session,
                    account,
                    entered: column::<String>(row, "event")? == "entered",
                    at: from_millis(column(row, "happened_at")?)?,
                })
            })
            .collect()
    }

    async fn insert_tech_check(&self, check: &TechCheck) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO tech_checks (account_id, camera_ok, microphone_ok, speaker_ok, connection_ok, \
             round_trip_ms, checked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(check.account.to_string())
        .bind(i64::from(check.camera_ok))
        .bind(i64::from(check.microphone_ok))
        .bind(i64::from(check.speaker_ok))
        .bind(i64::from(check.connection_ok))
        .bind(check.round_trip_ms.map(i64::from))
        .bind(to_millis(check.checked_at))
        .execute(&self.pool)
        .await
        .map_err(map_write_error)?;
        Ok(())
    }

    async fn latest_tech_check(
        &self,
        account: AccountId,
    ) -> Result<Option<TechCheck>, StorageError> {
        let row = sqlx::query(
            "SELECT account_id, camera_ok, microphone_ok, speaker_ok, connection_ok, round_trip_ms, \
             checked_at FROM tech_checks WHERE account_id = $1 ORDER BY checked_at DESC, id DESC LIMIT 1",
        )
        .bind(account.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_write_error)?;
        row.as_ref().map(tech_check).transpose()
    }

    async fn set_cohort_video(
        &self,
        cohort: CohortId,
        provider: &str,
        link: Option<&str>,
    ) -> Result<(), StorageError> {
        let changed =
            sqlx::query("UPDATE cohorts SET video_provider = $1, video_link = $2 WHERE id = $3")
                .bind(provider)
                .bind(link)
                .bind(cohort.to_string())
                .execute(&self.pool)
                .await
                .map_err(map_write_error)?;
        if changed.rows_affected() == 0 {
            return Err(StorageError::NotFound {
                entity: "cohort",
                id: cohort.to_string(),
            });
        }
        Ok(())
    }

    async fn cohort_video_link(&self, cohort: CohortId) -> Result<Option<String>, StorageError> {
        let row = sqlx::query("SELECT video_link FROM cohorts WHERE id = $1")
            .bind(cohort.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_write_error)?
            .ok_or_else(|| StorageError::NotFound {
                entity: "cohort",
                id: cohort.to_string(),
            })?;
        column(&row, "video_link")
    }
}

fn guest_from_row(row: &AnyRow) -> Result<SessionGuest, StorageError> {
    Ok(SessionGuest {
        session: parse_column("session_id", &column::<String>(row, "session_id")?)?,
        caregiver: parse_column(
            "caregiver_account_id",
            &column::<String>(row, "caregiver_account_id")?,
        )?,
        patient: parse_column("patient_id", &column::<String>(row, "patient_id")?)?,
        invited_by: parse_column("invited_by", &column::<String>(row, "invited_by")?)?,
        invited_at: from_millis(column(row, "invited_at")?)?,
    })
}
