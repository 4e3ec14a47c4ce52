# Stillpoint interface text, English.
# A clinic adds a language by copying this folder to content/locales/<tag>/ (or to the folder set
# by `locales_dir`) and translating every message. Missing messages fall back to English.

language-name = English
app-name = Stillpoint
skip-to-content = Skip to main content
nav-label = Main
nav-start = Start
nav-home = Home
nav-sites = Sites
nav-sign-in = Sign in
nav-sign-out = Sign out
language-switcher-label = Language
language-switcher-submit = Change language
footer-privacy = Your health information is confidential. The clinic uses it to care for you and to run the program.
# The crisis text names the United States 988 Suicide & Crisis Lifeline; a clinic elsewhere replaces it.
footer-crisis = Forms and messages here are not watched around the clock. If you are thinking about harming yourself, call or text 988 (Suicide & Crisis Lifeline, United States) now. In immediate danger, call 911.

start-title = Mindfulness for living with chronic illness
start-lead = { $clinic } runs eight-week Mindfulness-Based Stress Reduction (MBSR) groups online, for people living with long-term pain, cancer, diabetes, heart or lung disease and other chronic conditions.
start-what-title = What the program includes
start-what-orientation = An orientation session to meet your facilitator and test your camera and microphone.
start-what-classes = Eight weekly live group classes by video, each about two to two and a half hours long.
start-what-retreat = One longer day of practice between the sixth and seventh week.
start-what-practice = Short daily home practice with guided recordings, a timer and a diary.
start-what-measures = Brief questionnaires so you and your care team can see how you are doing.
start-referral-title = How to join
start-referral-text = Your doctor or care team refers you. The clinic then contacts you to talk about whether the program suits you right now.
start-sign-in-prompt = Already have an account?

sign-in-title = Sign in
# Put before the title of a page that shows an error, so screen readers announce it first.
error-prefix = Error:
sign-in-email = E-mail address
sign-in-password = Password
sign-in-submit = Sign in
sign-in-failed = The e-mail address or password is incorrect. Check both and try again.
sign-in-throttled = Too many failed attempts to sign in. For your safety, please wait { $minutes } { $minutes ->
    [one] minute
   *[other] minutes
} and try again. If you cannot remember your password, contact your clinic.
sign-in-invalid-email = Enter an e-mail address such as name@example.org.
sign-in-help = Forgotten your password or never received an invitation? Contact your clinic.

home-title = Home
home-greeting = Welcome, { $name }
home-roles-title = Your roles
home-no-roles = Your account has no role yet. Ask your program administrator to add one.
home-site-at = at { $site }
home-sessions-title = Your devices
home-sessions-text = If you signed in on a shared or lost device, you can sign out on every device at once, including this one.
home-sign-out-everywhere = Sign out on all devices
home-preferences-title = Your settings
home-language = Language
home-time-zone = Time zone
home-local-time = Your local time now
home-patient-site = Your care is with { $site }.
home-patient-next = Your care team will invite you to a group and tell you the dates and times.

role-patient = Patient
role-caregiver = Caregiver
role-facilitator = Facilitator
role-clinician = Clinician
role-program_administrator = Program administrator
role-system_administrator = System administrator

sites-title = Sites
sites-caption = Sites and the number of patients each one cares for
sites-code = Code
sites-name = Name
sites-time-zone = Time zone
sites-patients = Patients
sites-empty = No sites have been set up yet.

error-not-found-title = Page not found
error-not-found-text = There is no page at this address. Check the address or go back to the start page.
error-sign-in-required-title = Please sign in
error-sign-in-required-text = You need to sign in to see this page.
error-forbidden-title = Not available
error-forbidden-text = Your account does not have access to this page.
error-form-expired-title = Please try again
error-form-expired-text = This form has expired or did not come from this site. Go back, reload the page and submit it again.
error-bad-request-title = Please check your entry
error-server-title = Sorry, something went wrong on our side
error-server-text = The problem has been recorded. Please try again in a few minutes. Reference: { $reference }
error-unavailable-title = Stillpoint is temporarily unavailable
error-unavailable-text = Please try again in a few minutes.
error-back-start = Go to the start page

nav-audit = Audit trail
nav-record-access = Who saw my record
audit-title = Audit trail
audit-intro = Every sign-in and every access to patient data is recorded here. Search by patient, account, action or dates; dates are days in your time zone.
audit-patient = Patient id
audit-account = Account id
audit-action = Action
audit-any-action = Any action
audit-from = From (first day)
audit-until = Until (last day)
audit-search = Search
audit-export = Download as CSV
audit-empty = No events match this search.
audit-caption = { $count } most recent matching events
audit-when = When
audit-who = Who
audit-record = Record
audit-outcome = Outcome
audit-anonymous = Not signed in
audit-break-glass = emergency access
audit-action-read = Viewed
audit-action-create = Created
audit-action-update = Changed
audit-action-delete = Deleted
audit-action-sign_in = Signed in
audit-action-sign_out = Signed out
audit-action-second_factor = Two-step verification
audit-outcome-success = Allowed
audit-outcome-denied = Refused
audit-outcome-failed = Failed
record-access-title = Who saw my record
record-access-intro = Each time someone at the clinic opens or changes your record, it is recorded. This list shows those accesses, newest first.
record-access-empty = Nobody else has accessed your record yet.

## Two-step verification
mfa-verify-title = Enter your one-time code
mfa-verify-intro = Staff accounts open patient records, so signing in takes a second step. Open your authenticator app and enter the six-digit code it shows for this clinic.
mfa-verify-hint = Six digits from the app. Lost your phone? Enter one of your recovery codes instead.
mfa-setup-title = Set up two-step verification
mfa-setup-intro = Staff accounts open patient records, so signing in takes a second step: a code from an authenticator app on your phone. This takes about two minutes, once.
mfa-setup-step-app = Install an authenticator app on your phone if you do not have one, for example Google Authenticator, Microsoft Authenticator or FreeOTP.
mfa-setup-step-scan = In the app, add an account and scan this QR code. If you cannot scan it, choose to enter a key and type the key below.
mfa-setup-key-label = Key to type into the app:
mfa-setup-step-code = Enter the six-digit code the app now shows for this clinic.
mfa-setup-hint = Six digits from the app. The code changes every 30 seconds.
mfa-code-label = Code
mfa-submit = Continue
mfa-cancel = Cancel and sign out
mfa-code-invalid = That code is not right, or it was already used. Enter the code the app shows now, or a recovery code.
mfa-demo-code = Demo clinic: the current code is { $code }. A real clinic never shows it here.
recovery-codes-title = Your recovery codes
recovery-codes-intro = If you lose your phone, each of these codes lets you sign in once instead of a code from the app. Print them or store them in a password manager, away from your phone.
recovery-codes-once = This is the only time these codes are shown. Making new codes replaces these.
recovery-codes-continue = I have saved my codes, continue

## Patients and care teams
nav-patients = Patients
nav-sharing = Sharing with caregivers
patients-title = Patients in your care
patients-intro = Patients whose care is held at your sites, and patients in the groups you facilitate. Opening a record is recorded in the audit trail.
patients-empty = No patients are in your care yet.
patients-caption = Patients in your care, by family name
patients-name = Name
patients-birth-date = Date of birth
patients-site = Site
patient-birth-date = Date of birth
patient-site = Site
patient-language = Language
patient-time-zone = Time zone
patient-conditions = Chronic conditions
patient-conditions-none = No conditions are recorded.
patient-cohorts = Groups
patient-cohorts-none = Not in a group yet.
patient-shared-intro = This person shares these parts of their program with you:
patient-shared-empty = Their class schedule, practice and progress appear here once their group has started.
patient-break-glass-notice = You opened this record with break-glass access. It is recorded and reported to the program administrators, and it ends at { $until }.
break-glass-title = This patient is not in your care
break-glass-intro = You can open this record only if you have an urgent clinical reason, such as a patient in crisis whose own clinician cannot be reached. Access lasts 60 minutes, every view is flagged in the audit trail, and the program administrators are told.
break-glass-reason = Reason for opening the record
break-glass-reason-hint = Describe the situation in at least 15 characters. The reason is kept with the audit trail.
break-glass-submit = Open the record
break-glass-back = Back to your patients
caregiver-scope-schedule = Class schedule
caregiver-scope-practice = Home practice (minutes and days, not diary notes)
caregiver-scope-progress = Progress summaries (not individual answers)
caregiver-scope-sessions = Invitations to some live sessions
sharing-title = Sharing with caregivers
sharing-intro = You can let a family member or caregiver see parts of your program. You choose each part, and you can stop sharing at any time; it takes effect at once.
sharing-current = People you share with
sharing-none = You do not share with anyone.
sharing-shares = Sees:
sharing-stop = Stop sharing with { $name }
sharing-stopped = You stopped sharing with this person.
sharing-add = Share with a caregiver
sharing-email = Your caregiver's e-mail address
sharing-what = What they may see
sharing-submit = Share
home-break-glass-title = Break-glass access in the last 14 days
home-break-glass-row = { $clinician } opened the record of { $patient } on { $when }. Reason: { $reason }
home-shared-with-you = People who share with you
