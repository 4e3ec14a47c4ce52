# Textos de la interfaz de Stillpoint, español.

language-name = Español
app-name = Stillpoint
skip-to-content = Saltar al contenido principal
nav-label = Principal
nav-start = Inicio
nav-home = Mi página
nav-sites = Sedes
nav-sign-in = Iniciar sesión
nav-sign-out = Cerrar sesión
language-switcher-label = Idioma
language-switcher-submit = Cambiar idioma
footer-privacy = Su información de salud es confidencial. La clínica la usa para atenderle y para llevar el programa.
footer-crisis = Los formularios y mensajes de este sitio no se revisan a toda hora. Si piensa en hacerse daño, llame o envíe un mensaje de texto al 988 (Línea de Prevención del Suicidio y Crisis, Estados Unidos; marque 2 para español) ahora. Si corre peligro inmediato, llame al 911.

start-title = Atención plena para vivir con una enfermedad crónica
start-lead = { $clinic } ofrece grupos en línea de ocho semanas de Reducción del Estrés Basada en la Atención Plena (MBSR) para personas que viven con dolor persistente, cáncer, diabetes, enfermedades del corazón o del pulmón y otras enfermedades crónicas.
start-what-title = Qué incluye el programa
start-what-orientation = Una sesión de orientación para conocer a su facilitador y probar su cámara y micrófono.
start-what-classes = Ocho clases grupales semanales en vivo por video, de dos a dos horas y media cada una.
start-what-retreat = Un día más largo de práctica entre la sexta y la séptima semana.
start-what-practice = Práctica diaria breve en casa con grabaciones guiadas, un temporizador y un diario.
start-what-measures = Cuestionarios breves para que usted y su equipo de atención vean cómo se encuentra.
start-referral-title = Cómo participar
start-referral-text = Su médico o su equipo de atención le remite. Después, la clínica se pone en contacto con usted para hablar de si el programa le conviene ahora.
start-sign-in-prompt = ¿Ya tiene una cuenta?

sign-in-title = Iniciar sesión
error-prefix = Error:
sign-in-email = Correo electrónico
sign-in-password = Contraseña
sign-in-submit = Iniciar sesión
sign-in-failed = El correo electrónico o la contraseña no son correctos. Revise ambos e inténtelo de nuevo.
sign-in-throttled = Hubo demasiados intentos fallidos de iniciar sesión. Por su seguridad, espere { $minutes } { $minutes ->
    [one] minuto
   *[other] minutos
} e inténtelo de nuevo. Si no recuerda su contraseña, comuníquese con su clínica.
sign-in-invalid-email = Escriba un correo electrónico como nombre@ejemplo.org.
sign-in-help = ¿Olvidó su contraseña o no recibió una invitación? Comuníquese con su clínica.

home-title = Mi página
home-greeting = Hola, { $name }
home-roles-title = Sus funciones
home-no-roles = Su cuenta aún no tiene ninguna función. Pida a su administrador del programa que le asigne una.
home-site-at = en { $site }
home-sessions-title = Sus dispositivos
home-sessions-text = Si inició sesión en un dispositivo compartido o perdido, puede cerrar la sesión en todos los dispositivos a la vez, incluido este.
home-sign-out-everywhere = Cerrar sesión en todos los dispositivos
home-preferences-title = Su configuración
home-language = Idioma
home-time-zone = Zona horaria
home-local-time = Su hora local ahora
home-patient-site = Su atención está a cargo de { $site }.
home-patient-next = Su equipo de atención le invitará a un grupo y le indicará las fechas y horas.

role-patient = Paciente
role-caregiver = Cuidador o cuidadora
role-facilitator = Facilitador o facilitadora
role-clinician = Profesional clínico
role-program_administrator = Administración del programa
role-system_administrator = Administración del sistema

sites-title = Sedes
sites-caption = Sedes y número de pacientes que atiende cada una
sites-code = Código
sites-name = Nombre
sites-time-zone = Zona horaria
sites-patients = Pacientes
sites-empty = Todavía no se ha configurado ninguna sede.

error-not-found-title = Página no encontrada
error-not-found-text = No hay ninguna página en esta dirección. Revise la dirección o vuelva a la página de inicio.
error-sign-in-required-title = Inicie sesión
error-sign-in-required-text = Necesita iniciar sesión para ver esta página.
error-forbidden-title = No disponible
error-forbidden-text = Su cuenta no tiene acceso a esta página.
error-form-expired-title = Inténtelo de nuevo
error-form-expired-text = Este formulario caducó o no provino de este sitio. Vuelva atrás, recargue la página y envíelo de nuevo.
error-bad-request-title = Revise lo que escribió
error-server-title = Lo sentimos, algo falló de nuestro lado
error-server-text = El problema quedó registrado. Inténtelo de nuevo en unos minutos. Referencia: { $reference }
error-unavailable-title = Stillpoint no está disponible en este momento
error-unavailable-text = Inténtelo de nuevo en unos minutos.
error-back-start = Ir a la página de inicio

nav-audit = Registro de auditoría
nav-record-access = Quién vio mi expediente
audit-title = Registro de auditoría
audit-intro = Aquí queda registrado cada inicio de sesión y cada acceso a datos de pacientes. Busque por paciente, cuenta, acción o fechas; las fechas son días en su zona horaria.
audit-patient = Id. de paciente
audit-account = Id. de cuenta
audit-action = Acción
audit-any-action = Cualquier acción
audit-from = Desde (primer día)
audit-until = Hasta (último día)
audit-search = Buscar
audit-export = Descargar como CSV
audit-empty = Ningún evento coincide con esta búsqueda.
audit-caption = Los { $count } eventos más recientes que coinciden
audit-when = Cuándo
audit-who = Quién
audit-record = Registro
audit-outcome = Resultado
audit-anonymous = Sin iniciar sesión
audit-break-glass = acceso de emergencia
audit-action-read = Consultó
audit-action-create = Creó
audit-action-update = Modificó
audit-action-delete = Eliminó
audit-action-sign_in = Inició sesión
audit-action-sign_out = Cerró sesión
audit-action-second_factor = Verificación en dos pasos
audit-outcome-success = Permitido
audit-outcome-denied = Rechazado
audit-outcome-failed = Falló
record-access-title = Quién vio mi expediente
record-access-intro = Cada vez que alguien de la clínica abre o modifica su expediente, queda registrado. Esta lista muestra esos accesos, del más reciente al más antiguo.
record-access-empty = Nadie más ha consultado su expediente todavía.

## Verificación en dos pasos
mfa-verify-title = Escriba su código de un solo uso
mfa-verify-intro = Las cuentas del personal abren expedientes de pacientes, así que iniciar sesión tiene un segundo paso. Abra su aplicación de autenticación y escriba el código de seis dígitos que muestra para esta clínica.
mfa-verify-hint = Seis dígitos de la aplicación. ¿Perdió su teléfono? Escriba uno de sus códigos de recuperación.
mfa-setup-title = Configure la verificación en dos pasos
mfa-setup-intro = Las cuentas del personal abren expedientes de pacientes, así que iniciar sesión tiene un segundo paso: un código de una aplicación de autenticación en su teléfono. Esto toma unos dos minutos, una sola vez.
mfa-setup-step-app = Si no tiene una, instale una aplicación de autenticación en su teléfono, por ejemplo Google Authenticator, Microsoft Authenticator o FreeOTP.
mfa-setup-step-scan = En la aplicación, agregue una cuenta y escanee este código QR. Si no puede escanearlo, elija escribir una clave y escriba la clave de abajo.
mfa-setup-key-label = Clave para escribir en la aplicación:
mfa-setup-step-code = Escriba el código de seis dígitos que la aplicación muestra ahora para esta clínica.
mfa-setup-hint = Seis dígitos de la aplicación. El código cambia cada 30 segundos.
mfa-code-label = Código
mfa-submit = Continuar
mfa-cancel = Cancelar y cerrar sesión
mfa-code-invalid = Ese código no es correcto o ya se usó. Escriba el código que la aplicación muestra ahora, o un código de recuperación.
mfa-demo-code = Clínica de demostración: el código actual es { $code }. Una clínica real nunca lo muestra aquí.
recovery-codes-title = Sus códigos de recuperación
recovery-codes-intro = Si pierde su teléfono, cada uno de estos códigos le permite iniciar sesión una vez en lugar de un código de la aplicación. Imprímalos o guárdelos en un administrador de contraseñas, lejos de su teléfono.
recovery-codes-once = Esta es la única vez que se muestran estos códigos. Crear códigos nuevos reemplaza a estos.
recovery-codes-continue = Ya guardé mis códigos, continuar
