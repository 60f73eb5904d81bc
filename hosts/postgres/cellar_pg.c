/*
 * cellar_pg.c: PostgreSQL extension over libcellar (include/cellar.h only).
 *
 * Column encryption with keys that never pass through SQL text:
 *   - the tenant keyring is imported by each backend from a sealed keyring file
 *     (cellar.keyring_file), unlocked with a password file readable only by the server's OS user
 *     (cellar.password_file); both are superuser settings, per database with ALTER DATABASE SET;
 *   - column keys are data keys generated in the module and stored wrapped under the tenant key in
 *     cellar.column_keys (name, version, mode, tenant version, wrapped blob, created, retired);
 *   - SQL names keys, never carries them.
 *
 * Caches (per backend, in malloc'd Cellar handles, wiped on free): the imported keyring and, per
 * column key name, one cell cipher (or blind-index key) per retained version. The keyring file's
 * identity (inode, size, mtime) and a lock marker file are checked once per statement, so another
 * session's tenant rotation or tenant lock is seen at the next statement. Column keys are re-read
 * from cellar.column_keys when a statement trigger's relcache invalidation says the table changed
 * (at the next transaction of other backends).
 *
 * Typed values carry a one-byte type tag in front of the plaintext (inside the authenticated
 * ciphertext), so an int8 cell cannot be read back as text. Always Encrypted (MSSQL) keys carry
 * the value bytes exactly as SQL Server's drivers do (text as UTF-16LE, nvarchar) and no context.
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "cellar.h"

PG_MODULE_MAGIC;

#if PG_VERSION_NUM >= 170000
#define MY_LXID (MyProc->vxid.lxid)
#else
#define MY_LXID (MyProc->lxid)
#endif

/*
 * PostgreSQL 18 replaced pg_attribute_noreturn() (written after a declaration) with pg_noreturn
 * (a C11 function specifier, written before it). GCC's attribute may stand before the declaration
 * too, so one spelling in front serves 15 to 18.
 */
#ifdef pg_noreturn
#define CELLAR_NORETURN pg_noreturn
#else
#define CELLAR_NORETURN pg_attribute_noreturn()
#endif

/* Column key modes beyond the cell modes of cellar.h. */
#define MODE_BLIND_INDEX 100

/* Blind-index version for new blind_index keys: the newest the header offers. */
#ifdef CELLAR_BLIND_INDEX_V2
#define BIDX_NEW_VERSION CELLAR_BLIND_INDEX_V2
#else
#define BIDX_NEW_VERSION CELLAR_BLIND_INDEX_V1
#endif

/* Type tags in front of native plaintexts. */
#define TAG_BYTEA 'b'
#define TAG_TEXT 't'
#define TAG_INT8 'i'
#define TAG_NUMERIC 'n'
#define TAG_DATE 'd'
#define TAG_TIMESTAMPTZ 'z'
#define TAG_JSONB 'j'

#define MAX_SECRET_FILE 4096
#define MAX_KEYRING_FILE (16 * 1024 * 1024)
#define STACK_PT 1024

void _PG_init(void);

/* ---- settings ---- */
static char *guc_keyring_file = NULL;
static char *guc_password_file = NULL;
static bool guc_fips_strict = false;
static int guc_iterations = CELLAR_PASSWORD_DEFAULT_ITERATIONS;
/* PKCS#11: the tenant key held by a token (the keyring file holds a reference, never material). */
static char *guc_pkcs11_module = NULL;
static char *guc_pkcs11_token = NULL;
static char *guc_pkcs11_pin_file = NULL;
static char *guc_pkcs11_key_label = NULL;
static bool guc_pkcs11_zero_padded = false;

/* ---- keyring state (per backend) ---- */
static cellar_keyring *kr = NULL;
static char kr_path[MAXPGPATH];
static char kr_pwpath[MAXPGPATH];
static char kr_pkcs11[2 * MAXPGPATH + 2];	/* pkcs11 module and PIN file the keyring was attached with */
static dev_t kr_dev;
static ino_t kr_ino;
static off_t kr_size;
static struct timespec kr_mtime;
static bool kr_session_locked = false;
static bool kr_tenant_locked = false;
static uint64 kr_generation = 1;       /* bumped on every reload, lock and key change */
static TimestampTz kr_checked_ts = 0;
static LocalTransactionId kr_checked_lxid = InvalidLocalTransactionId;
static uint64 kr_checked_gen = 0;
static int kr_err_code = 0;
static char kr_err_msg[1024];
static char kr_err_hint[512];
static char kr_err_detail[512];	/* Cellar's last-error text, when the failure came from Cellar */
static int64 unapproved_ops = 0;
static bool kr_history_applied = false;	/* retirements recorded in the database re-applied */
static int64 approved_ops = 0;

/* ---- column key cache ---- */
typedef struct KeyVer
{
	uint32		version;
	uint32		tenant_version;
	bool		retired;
	uint32		bidx_version;	/* blind_index keys: CELLAR_BLIND_INDEX_V* */
	cellar_key *key;
	cellar_cell_cipher *cipher;
	cellar_blind_index_key *bkey;	/* blind_index keys: derived once */
} KeyVer;

typedef struct ColKey
{
	char		name[NAMEDATALEN];
	int			mode;
	int			nver;
	KeyVer	   *ver;			/* in TopMemoryContext, ascending versions */
	uint32		active;			/* highest retained version, 0 if none */
	char	   *sig;			/* the rows this cache was built from */
	Size		sig_len;
	bool		valid;
	bool		stale;			/* cellar.column_keys changed (relcache invalidation): re-read */
	uint64		gen;
} ColKey;

/* cellar.column_keys, for the relcache callback (InvalidOid until looked up). */
static Oid	column_keys_oid = InvalidOid;
static SPIPlanPtr colkey_plan = NULL;

static ColKey **colkeys = NULL;
static int ncolkeys = 0;
static int maxcolkeys = 0;

typedef struct FnCache
{
	ColKey	   *ck;
	int			name_len;
	char		name[NAMEDATALEN];
} FnCache;

/* ------------------------------------------------------------------------------------------ */
/* errors */

static int
status_sqlstate(cellar_status st)
{
	switch (st)
	{
		case CELLAR_ERR_AUTHENTICATION_FAILED:
			return ERRCODE_DATA_EXCEPTION;
		case CELLAR_ERR_UNSUPPORTED_FORMAT:
			return ERRCODE_INVALID_BINARY_REPRESENTATION;
		case CELLAR_ERR_KEY_NOT_FOUND:
			return ERRCODE_UNDEFINED_OBJECT;
		case CELLAR_ERR_TENANT_LOCKED:
			return ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
		case CELLAR_ERR_INVALID_ARGUMENT:
		case CELLAR_ERR_NULL_POINTER:
			return ERRCODE_INVALID_PARAMETER_VALUE;
		case CELLAR_ERR_USAGE_LIMIT:
			return ERRCODE_PROGRAM_LIMIT_EXCEEDED;
		case CELLAR_ERR_NOT_FIPS:
			return ERRCODE_FEATURE_NOT_SUPPORTED;
		case CELLAR_ERR_PROVIDER_FAILED:
			return ERRCODE_EXTERNAL_ROUTINE_EXCEPTION;
		default:
			return ERRCODE_INTERNAL_ERROR;
	}
}

static const char *
last_error_text(void)
{
	static char buf[512];

	cellar_last_error(buf, sizeof(buf));
	return buf;
}

/* Raises a Cellar failure as a PostgreSQL error; `what` names the operation and the key. */
static CELLAR_NORETURN void raise_status(cellar_status st, const char *what);
static void
raise_status(cellar_status st, const char *what)
{
	const char *le = last_error_text();

	ereport(ERROR,
			(errcode(status_sqlstate(st)),
			 errmsg("cellar: %s failed: %s", what, cellar_status_name(st)),
			 le[0] ? errdetail("Cellar: %s", le) : 0));
}

static const char *
mode_name(int mode)
{
	switch (mode)
	{
		case CELLAR_CELL_RANDOMIZED:
			return "randomized";
		case CELLAR_CELL_DETERMINISTIC:
			return "deterministic";
		case CELLAR_CELL_MSSQL_RANDOMIZED:
			return "mssql_randomized";
		case CELLAR_CELL_MSSQL_DETERMINISTIC:
			return "mssql_deterministic";
		case MODE_BLIND_INDEX:
			return "blind_index";
	}
	return "unknown";
}

static int
mode_from_name(const char *s)
{
	if (strcmp(s, "randomized") == 0)
		return CELLAR_CELL_RANDOMIZED;
	if (strcmp(s, "deterministic") == 0)
		return CELLAR_CELL_DETERMINISTIC;
	if (strcmp(s, "mssql_randomized") == 0)
		return CELLAR_CELL_MSSQL_RANDOMIZED;
	if (strcmp(s, "mssql_deterministic") == 0)
		return CELLAR_CELL_MSSQL_DETERMINISTIC;
	if (strcmp(s, "blind_index") == 0)
		return MODE_BLIND_INDEX;
	return 0;
}

static bool
mode_is_mssql(int mode)
{
	return mode == CELLAR_CELL_MSSQL_RANDOMIZED || mode == CELLAR_CELL_MSSQL_DETERMINISTIC;
}

static bool
mode_is_approved(int mode)
{
	return mode == CELLAR_CELL_RANDOMIZED || mode == MODE_BLIND_INDEX;
}

/* Under cellar.fips_strict, a scheme the module's indicator does not approve is refused. */
static void
strict_check_mode(int mode, const char *keyname)
{
	if (guc_fips_strict && !mode_is_approved(mode))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cellar.fips_strict: column key \"%s\" uses %s cells, which are not an approved scheme",
						keyname, mode_name(mode)),
				 errhint("Use a randomized column key for the values and a blind_index key (cellar.blind_index) for equality lookups.")));
}

/* After a successful crypto call: count it, and refuse a non-approved one in strict mode. */
static void
approval_check(const char *what)
{
	int32		a = cellar_last_operation_approved();

	if (a == 1)
	{
		approved_ops++;
		return;
	}
	if (a == 0)
	{
		unapproved_ops++;
		if (guc_fips_strict)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cellar.fips_strict: %s was not an approved operation", what),
					 errhint("Use randomized column keys plus cellar.blind_index for equality lookups.")));
		return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("cellar: %s: the module's approval indicator reports a failure", what)));
}

/* ------------------------------------------------------------------------------------------ */
/* column key cache */

static void
colkey_clear(ColKey *ck)
{
	for (int i = 0; i < ck->nver; i++)
	{
		cellar_cell_cipher_free(ck->ver[i].cipher);
		cellar_blind_index_key_free(ck->ver[i].bkey);
		cellar_key_free(ck->ver[i].key);
	}
	if (ck->ver)
		pfree(ck->ver);
	if (ck->sig)
		pfree(ck->sig);
	ck->ver = NULL;
	ck->sig = NULL;
	ck->sig_len = 0;
	ck->nver = 0;
	ck->active = 0;
	ck->valid = false;
}

/* Drops every unwrapped column key (their material is wiped by cellar_key_free). */
static void
invalidate_all(void)
{
	for (int i = 0; i < ncolkeys; i++)
		colkey_clear(colkeys[i]);
	kr_generation++;
}

static void
keyring_drop(void)
{
	invalidate_all();
	if (kr)
	{
		cellar_keyring_free(kr);
		kr = NULL;
	}
	kr_path[0] = '\0';
}

static void
cellar_exit(int code, Datum arg)
{
	keyring_drop();
}

/* ------------------------------------------------------------------------------------------ */
/* files */

/*
 * Reads a whole file into palloc'd memory. For the password file (`secret`), the file must be
 * owned by the server's OS user with no group or other permission bits, as PostgreSQL requires of
 * its own TLS key. Returns an errcode and fills kr_err_* on failure (no ereport: the status view
 * reports the same text).
 */
static int
read_file(const char *path, const char *what, bool secret, size_t maxlen, uint8 **out, size_t *out_len)
{
	int			fd;
	struct stat st;
	uint8	   *buf;
	size_t		got = 0;

	/* O_NONBLOCK: a FIFO in place of the file must not hang the backend (regular files ignore it). */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
	{
		snprintf(kr_err_msg, sizeof(kr_err_msg), "cellar: could not open %s \"%s\": %s", what, path, strerror(errno));
		snprintf(kr_err_hint, sizeof(kr_err_hint), "Check cellar.%s.",
				 strcmp(what, "PIN file") == 0 ? "pkcs11_pin_file" : secret ? "password_file" : "keyring_file");
		return ERRCODE_CONFIG_FILE_ERROR;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		close(fd);
		snprintf(kr_err_msg, sizeof(kr_err_msg), "cellar: %s \"%s\" is not a regular file", what, path);
		kr_err_hint[0] = '\0';
		return ERRCODE_CONFIG_FILE_ERROR;
	}
	if (secret && (st.st_uid != geteuid() || (st.st_mode & (S_IRWXG | S_IRWXO)) != 0))
	{
		close(fd);
		snprintf(kr_err_msg, sizeof(kr_err_msg),
				 "cellar: %s \"%s\" must be owned by the database server user and readable by it alone",
				 what, path);
		snprintf(kr_err_hint, sizeof(kr_err_hint), "chown the file to the server's OS user and chmod it 0600.");
		return ERRCODE_CONFIG_FILE_ERROR;
	}
	if ((size_t) st.st_size > maxlen)
	{
		close(fd);
		snprintf(kr_err_msg, sizeof(kr_err_msg), "cellar: %s \"%s\" is too large", what, path);
		kr_err_hint[0] = '\0';
		return ERRCODE_CONFIG_FILE_ERROR;
	}
	buf = palloc(st.st_size + 1);
	while (got < (size_t) st.st_size)
	{
		ssize_t		n = read(fd, buf + got, st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	close(fd);
	if (got != (size_t) st.st_size)
	{
		explicit_bzero(buf, st.st_size);
		pfree(buf);
		snprintf(kr_err_msg, sizeof(kr_err_msg), "cellar: could not read %s \"%s\"", what, path);
		kr_err_hint[0] = '\0';
		return ERRCODE_CONFIG_FILE_ERROR;
	}
	*out = buf;
	*out_len = got;
	return 0;
}

/* Reads the password file; trailing newlines are not part of the password. */
static int
read_password(uint8 **pw, size_t *pwlen)
{
	int			code = read_file(guc_password_file, "password file", true, MAX_SECRET_FILE, pw, pwlen);

	if (code)
		return code;
	while (*pwlen > 0 && ((*pw)[*pwlen - 1] == '\n' || (*pw)[*pwlen - 1] == '\r'))
		(*pw)[--(*pwlen)] = 0;
	return 0;
}

static void
wipe_free(void *p, size_t n)
{
	if (p)
	{
		explicit_bzero(p, n);
		pfree(p);
	}
}


/*
 * The shape of a password-sealed keyring export (docs/KEYS.md 5.5): 0x4B | format 1 or 2 |
 * iterations (u32 BE, in Cellar's range) | salt (16) | AES-KWP (at least 16 bytes, a multiple
 * of 8). Cellar answers a wrong password and a file of another kind alike (authentication
 * failed); this check lets the error say which. A root-sealed export (0x52) goes to Cellar,
 * which names it.
 */
static bool
looks_like_keyring_export(const uint8 *b, size_t n)
{
	uint32		it;

	if (n >= 1 && b[0] == 0x52)
		return true;
	if (n < 22 + 16 || (n - 22) % 8 != 0 || b[0] != 0x4B || (b[1] != 0x01 && b[1] != 0x02))
		return false;
	it = (uint32) b[2] << 24 | (uint32) b[3] << 16 | (uint32) b[4] << 8 | b[5];
	return it >= CELLAR_PASSWORD_MIN_ITERATIONS && it <= CELLAR_PASSWORD_MAX_ITERATIONS;
}

static bool
pkcs11_configured(void)
{
	return guc_pkcs11_module != NULL && guc_pkcs11_module[0] != '\0';
}

/* The PKCS#11 settings a keyring was attached with: a change (another PIN file) reloads it. */
static const char *
pkcs11_identity(void)
{
	static char buf[2 * MAXPGPATH + 2];

	snprintf(buf, sizeof(buf), "%s\n%s", guc_pkcs11_module ? guc_pkcs11_module : "",
			 guc_pkcs11_pin_file ? guc_pkcs11_pin_file : "");
	return buf;
}

/*
 * Fills *c from the cellar.pkcs11_* settings, with the PIN read from cellar.pkcs11_pin_file
 * (checked like the password file) into *pin, which the caller wipes with wipe_free(*pin,
 * *pinlen + 1). Returns 0 or an errcode with kr_err_* filled.
 */
static int
pkcs11_config(cellar_pkcs11_config *c, uint8 **pin, size_t *pinlen, bool need_token)
{
	int			code;

	if (guc_pkcs11_pin_file == NULL || guc_pkcs11_pin_file[0] == '\0' ||
		(need_token && (guc_pkcs11_token == NULL || guc_pkcs11_token[0] == '\0')))
	{
		snprintf(kr_err_msg, sizeof(kr_err_msg), "cellar: cellar.pkcs11_module is set but cellar.pkcs11_%s is not",
				 guc_pkcs11_pin_file == NULL || guc_pkcs11_pin_file[0] == '\0' ? "pin_file" : "token");
		snprintf(kr_err_hint, sizeof(kr_err_hint),
				 "A superuser sets cellar.pkcs11_pin_file (and cellar.pkcs11_token to create or rotate keys in the token).");
		return ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
	}
	code = read_file(guc_pkcs11_pin_file, "PIN file", true, MAX_SECRET_FILE, pin, pinlen);
	if (code)
		return code;
	while (*pinlen > 0 && ((*pin)[*pinlen - 1] == '\n' || (*pin)[*pinlen - 1] == '\r'))
		(*pin)[--(*pinlen)] = 0;
	if (*pinlen == 0)
	{
		wipe_free(*pin, 1);
		*pin = NULL;
		snprintf(kr_err_msg, sizeof(kr_err_msg), "cellar: PIN file \"%s\" is empty", guc_pkcs11_pin_file);
		kr_err_hint[0] = '\0';
		return ERRCODE_CONFIG_FILE_ERROR;
	}
	memset(c, 0, sizeof(*c));
	c->module_path = (const uint8_t *) guc_pkcs11_module;
	c->module_path_len = strlen(guc_pkcs11_module);
	c->token_label = (const uint8_t *) (guc_pkcs11_token ? guc_pkcs11_token : "");
	c->token_label_len = guc_pkcs11_token ? strlen(guc_pkcs11_token) : 0;
	c->pin = *pin;
	c->pin_len = *pinlen;
	c->flags = guc_pkcs11_zero_padded ? CELLAR_PKCS11_ALLOW_ZERO_PADDED_KWP : 0;
	return 0;
}

/* Fills kr_err_* for a failed PKCS#11 call (Cellar's last-error text in the detail). */
static int
pkcs11_error(cellar_status rc, const char *what)
{
	strlcpy(kr_err_detail, last_error_text(), sizeof(kr_err_detail));
	if (rc == CELLAR_ERR_AUTHENTICATION_FAILED)
	{
		snprintf(kr_err_msg, sizeof(kr_err_msg), "cellar: %s: the PKCS#11 token refused the PIN in \"%s\"",
				 what, guc_pkcs11_pin_file);
		kr_err_hint[0] = '\0';
		return ERRCODE_INVALID_PASSWORD;
	}
	snprintf(kr_err_msg, sizeof(kr_err_msg), "cellar: %s: %s", what, cellar_status_name(rc));
	snprintf(kr_err_hint, sizeof(kr_err_hint),
			 "Check cellar.pkcs11_module, cellar.pkcs11_token and that the token (SOFTHSM2_CONF for SoftHSM2) is reachable by the server's OS user.");
	return rc == CELLAR_ERR_KEY_NOT_FOUND ? ERRCODE_UNDEFINED_OBJECT : ERRCODE_EXTERNAL_ROUTINE_EXCEPTION;
}

/* Number of retained tenant versions of `k` held by a PKCS#11 token. */
static int
token_versions(cellar_keyring *k)
{
	size_t		cnt = 0;
	uint32	   *vs;
	uint8	   *ids;
	int			n = 0;

	if (cellar_keyring_versions(k, NULL, NULL, 0, &cnt) != CELLAR_OK && cnt == 0)
		return 0;
	vs = palloc0(sizeof(uint32) * (cnt + 1));
	ids = palloc0(CELLAR_KEY_ID_LEN * (cnt + 1));
	if (cellar_keyring_versions(k, vs, ids, cnt, &cnt) == CELLAR_OK)
		for (size_t i = 0; i < cnt; i++)
		{
			uint8		id[CELLAR_KEY_ID_LEN];
			uint32		flags = 0;

			if (cellar_keyring_version_info(k, vs[i], id, &flags) == CELLAR_OK &&
				(flags & CELLAR_KEYRING_VERSION_PKCS11) && !(flags & CELLAR_KEYRING_VERSION_RETIRED))
				n++;
		}
	pfree(vs);
	pfree(ids);
	return n;
}

/*
 * After an import: attaches the keyring's token versions with the PIN (cellar.pkcs11_*).
 * A keyring without token versions needs no PKCS#11 setting. Returns 0 or an errcode.
 */
static int
keyring_attach_token(cellar_keyring *k)
{
	cellar_pkcs11_config c;
	uint8	   *pin = NULL;
	size_t		pinlen = 0,
				attached = 0;
	cellar_status rc;
	int			code;

	if (token_versions(k) == 0)
		return 0;
	if (!pkcs11_configured())
	{
		snprintf(kr_err_msg, sizeof(kr_err_msg),
				 "cellar: keyring file \"%s\" holds tenant keys in a PKCS#11 token, and cellar.pkcs11_module is not set",
				 guc_keyring_file);
		snprintf(kr_err_hint, sizeof(kr_err_hint),
				 "A superuser sets cellar.pkcs11_module and cellar.pkcs11_pin_file.");
		return ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
	}
	code = pkcs11_config(&c, &pin, &pinlen, false);
	if (code)
		return code;
	rc = cellar_keyring_unlock_pkcs11(k, &c, &attached);
	wipe_free(pin, pinlen + 1);
	if (rc != CELLAR_OK)
		return pkcs11_error(rc, psprintf("could not attach the PKCS#11 tenant keys of keyring file \"%s\"", guc_keyring_file));
	return 0;
}

static bool
settings_present(void)
{
	if (guc_keyring_file == NULL || guc_keyring_file[0] == '\0' ||
		guc_password_file == NULL || guc_password_file[0] == '\0')
	{
		kr_err_code = ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
		snprintf(kr_err_msg, sizeof(kr_err_msg), "cellar: no keyring configured for this database");
		snprintf(kr_err_hint, sizeof(kr_err_hint),
				 "A superuser sets cellar.keyring_file and cellar.password_file (ALTER DATABASE ... SET, or postgresql.conf).");
		return false;
	}
	return true;
}

static char *
marker_path(void)
{
	return psprintf("%s.lock", guc_keyring_file);
}

/*
 * Brings the backend's keyring up to date with the settings and files; returns 0 or an errcode
 * (with kr_err_* filled). Never raises: the status view calls it too.
 */
static int
keyring_refresh(bool force)
{
	struct stat st;
	uint8	   *pw = NULL,
			   *blob = NULL;
	size_t		pwlen = 0,
				bloblen = 0;
	cellar_keyring *nk = NULL;
	cellar_status rc;
	int			code;
	char	   *marker;

	kr_err_code = 0;
	kr_err_msg[0] = kr_err_hint[0] = kr_err_detail[0] = '\0';
	if (!settings_present())
		return kr_err_code;

	marker = marker_path();
	kr_tenant_locked = (stat(marker, &st) == 0);
	pfree(marker);
	if (kr_tenant_locked)
	{
		if (kr)
		{
			cellar_keyring_lock(kr);
			invalidate_all();
		}
		snprintf(kr_err_msg, sizeof(kr_err_msg), "cellar: the tenant keyring is locked");
		snprintf(kr_err_hint, sizeof(kr_err_hint), "A superuser unlocks it with cellar.unlock_tenant().");
		return kr_err_code = ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
	}
	if (kr_session_locked)
	{
		snprintf(kr_err_msg, sizeof(kr_err_msg), "cellar: the tenant keyring is locked in this session");
		snprintf(kr_err_hint, sizeof(kr_err_hint), "Run cellar.unlock() to load it again from the password file.");
		return kr_err_code = ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
	}

	if (stat(guc_keyring_file, &st) != 0)
	{
		int			e = errno;

		if (kr)
			keyring_drop();
		snprintf(kr_err_msg, sizeof(kr_err_msg), "cellar: could not open keyring file \"%s\": %s",
				 guc_keyring_file, strerror(e));
		snprintf(kr_err_hint, sizeof(kr_err_hint),
				 e == ENOENT ? "Create it with cellar.create_keyring(), or fix cellar.keyring_file." : "Check cellar.keyring_file.");
		return kr_err_code = ERRCODE_CONFIG_FILE_ERROR;
	}
	if (!force && kr && strcmp(kr_path, guc_keyring_file) == 0 && strcmp(kr_pwpath, guc_password_file) == 0 &&
		strcmp(kr_pkcs11, pkcs11_identity()) == 0 &&
		st.st_dev == kr_dev && st.st_ino == kr_ino && st.st_size == kr_size &&
		st.st_mtim.tv_sec == kr_mtime.tv_sec && st.st_mtim.tv_nsec == kr_mtime.tv_nsec)
	{
		int32		locked = 0;

		if (cellar_keyring_is_locked(kr, &locked) == CELLAR_OK && !locked)
			return 0;
	}

	/* (Re)import. */
	keyring_drop();
	code = read_password(&pw, &pwlen);
	if (code)
		return kr_err_code = code;
	code = read_file(guc_keyring_file, "keyring file", false, MAX_KEYRING_FILE, &blob, &bloblen);
	if (code)
	{
		wipe_free(pw, pwlen + 1);
		return kr_err_code = code;
	}
	if (!looks_like_keyring_export(blob, bloblen))
	{
		/* Cellar reports this as a failed authentication, like a wrong password; say what it is. */
		wipe_free(pw, pwlen + 1);
		pfree(blob);
		snprintf(kr_err_msg, sizeof(kr_err_msg),
				 "cellar: keyring file \"%s\" is not a Cellar keyring export (no password-sealed keyring header)",
				 guc_keyring_file);
		snprintf(kr_err_hint, sizeof(kr_err_hint),
				 "cellar.keyring_file must name the file cellar.create_keyring() wrote (format: docs/KEYS.md 5.5).");
		return kr_err_code = ERRCODE_CONFIG_FILE_ERROR;
	}
	rc = cellar_keyring_import(blob, bloblen, NULL, pw, pwlen, &nk);
	wipe_free(pw, pwlen + 1);
	pfree(blob);
	if (rc != CELLAR_OK)
	{
		strlcpy(kr_err_detail, last_error_text(), sizeof(kr_err_detail));
		if (rc == CELLAR_ERR_AUTHENTICATION_FAILED)
		{
			snprintf(kr_err_msg, sizeof(kr_err_msg),
					 "cellar: could not unlock keyring file \"%s\": wrong password in \"%s\", or the file was altered",
					 guc_keyring_file, guc_password_file);
			kr_err_hint[0] = '\0';
			return kr_err_code = ERRCODE_INVALID_PASSWORD;
		}
		snprintf(kr_err_msg, sizeof(kr_err_msg), "cellar: could not import keyring file \"%s\": %s (%s)",
				 guc_keyring_file, cellar_status_name(rc), kr_err_detail);
		kr_err_hint[0] = '\0';
		return kr_err_code = (rc == CELLAR_ERR_INVALID_ARGUMENT ? ERRCODE_CONFIG_FILE_ERROR : status_sqlstate(rc));
	}
	/* Tenant versions held by a PKCS#11 token come back as references: log in and attach them. */
	code = keyring_attach_token(nk);
	if (code)
	{
		cellar_keyring_free(nk);
		return kr_err_code = code;
	}
	{
		int32		a = cellar_last_operation_approved();

		if (a == 1)
			approved_ops++;
		else if (a == 0)
			unapproved_ops++;
	}
	kr = nk;
	kr_history_applied = false;
	strlcpy(kr_path, guc_keyring_file, sizeof(kr_path));
	strlcpy(kr_pwpath, guc_password_file, sizeof(kr_pwpath));
	strlcpy(kr_pkcs11, pkcs11_identity(), sizeof(kr_pkcs11));
	kr_dev = st.st_dev;
	kr_ino = st.st_ino;
	kr_size = st.st_size;
	kr_mtime = st.st_mtim;
	kr_generation++;
	return 0;
}

static CELLAR_NORETURN void raise_keyring_error(void);
static void
raise_keyring_error(void)
{
	ereport(ERROR,
			(errcode(kr_err_code),
			 errmsg("%s", kr_err_msg),
			 kr_err_detail[0] ? errdetail("Cellar: %s", kr_err_detail) : 0,
			 kr_err_hint[0] ? errhint("%s", kr_err_hint) : 0));
}

static bool
same_statement(TimestampTz ts, LocalTransactionId lxid)
{
	return ts == GetCurrentStatementStartTimestamp() && lxid == MY_LXID;
}

/*
 * Re-applies the tenant versions this database recorded as retired (cellar.retired_tenant_versions)
 * to a freshly imported keyring, so that an older copy of the keyring file cannot bring a
 * crypto-shredded version back. An older copy whose active version was retired is refused.
 */
static void
apply_key_history(void)
{
	uint64		n;
	int			rc;

	if (kr_history_applied || kr == NULL)
		return;
	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "cellar: SPI_connect failed: %d", rc);

	/*
	 * The keyring generation this database recorded when it last wrote the file: an older export
	 * (a copy taken before a rotation or retirement) is refused. Checked after the import rather
	 * than through cellar_keyring_import_min_generation so that the error can say so instead of
	 * reading like a wrong password.
	 */
	if (SPI_execute("SELECT generation FROM cellar.keyring_state", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "cellar: reading cellar.keyring_state failed");
	if (SPI_processed > 0)
	{
		bool		isnull;
		int64		want = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		uint64		have = 0;

		if (cellar_keyring_generation(kr, &have) != CELLAR_OK || (int64) have < want)
		{
			keyring_drop();
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cellar: keyring file \"%s\" is older than this database's record (generation %llu, expected at least %lld)",
							guc_keyring_file, (unsigned long long) have, (long long) want),
					 errhint("An older copy of the keyring file was restored; restore the current one.")));
		}
	}
	if (SPI_execute("SELECT version FROM cellar.retired_tenant_versions", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "cellar: reading cellar.retired_tenant_versions failed");
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		uint32		v = (uint32) DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		uint8		id[CELLAR_KEY_ID_LEN];
		uint32		flags = 0,
					active = 0;

		if (cellar_keyring_version_info(kr, v, id, &flags) != CELLAR_OK || (flags & CELLAR_KEYRING_VERSION_RETIRED))
			continue;
		cellar_keyring_active_version(kr, &active);
		if (v == active)
		{
			keyring_drop();
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cellar: keyring file \"%s\" is older than this database's key history: its active tenant version %u was retired",
							guc_keyring_file, v),
					 errhint("Restore the current keyring file.")));
		}
		if (cellar_keyring_retire(kr, v) != CELLAR_OK)
			raise_status(CELLAR_ERR_INTERNAL, "re-applying a tenant key retirement");
	}
	SPI_finish();
	kr_history_applied = true;
}

/* The keyring, checked against its files once per statement; raises when unusable. */
static void
ensure_keyring(bool force)
{
	if (!force && kr && kr_history_applied && kr_checked_gen == kr_generation &&
		same_statement(kr_checked_ts, kr_checked_lxid))
		return;
	if (keyring_refresh(force) != 0)
		raise_keyring_error();
	apply_key_history();
	kr_checked_ts = GetCurrentStatementStartTimestamp();
	kr_checked_lxid = MY_LXID;
	kr_checked_gen = kr_generation;
}

static void
fsync_dir_of(const char *path)
{
	char	   *dir = pstrdup(path);
	char	   *slash = strrchr(dir, '/');
	int			fd;

	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
	{
		(void) fsync(fd);
		close(fd);
	}
	pfree(dir);
}

/* Writes the keyring sealed with the password file, atomically (temp file, fsync, rename). */
static void
write_keyring_file(void)
{
	uint8	   *pw = NULL;
	size_t		pwlen = 0,
				need = 0,
				outlen = 0;
	uint8	   *buf;
	cellar_status rc;
	char	   *tmp;
	int			fd,
				code;
	struct stat st;

	code = read_password(&pw, &pwlen);
	if (code)
		raise_keyring_error();
	rc = cellar_keyring_export(kr, NULL, pw, pwlen, guc_iterations, NULL, 0, &need);
	if (rc != CELLAR_ERR_BUFFER_TOO_SMALL && rc != CELLAR_OK)
	{
		wipe_free(pw, pwlen + 1);
		raise_status(rc, "keyring export");
	}
	buf = palloc(need);
	rc = cellar_keyring_export(kr, NULL, pw, pwlen, guc_iterations, buf, need, &outlen);
	wipe_free(pw, pwlen + 1);
	if (rc != CELLAR_OK)
		raise_status(rc, "keyring export");

	tmp = psprintf("%s.tmp.%d", guc_keyring_file, MyProcPid);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, S_IRUSR | S_IWUSR);
	if (fd < 0)
		ereport(ERROR, (errcode_for_file_access(), errmsg("cellar: could not create \"%s\": %m", tmp)));
	if (write(fd, buf, outlen) != (ssize_t) outlen || fsync(fd) != 0)
	{
		int			e = errno;

		close(fd);
		unlink(tmp);
		errno = e;
		ereport(ERROR, (errcode_for_file_access(), errmsg("cellar: could not write \"%s\": %m", tmp)));
	}
	close(fd);
	if (rename(tmp, guc_keyring_file) != 0)
	{
		unlink(tmp);
		ereport(ERROR, (errcode_for_file_access(), errmsg("cellar: could not rename \"%s\": %m", tmp)));
	}
	fsync_dir_of(guc_keyring_file);
	pfree(buf);
	/* The backend's keyring is the file's content now. */
	if (stat(guc_keyring_file, &st) == 0)
	{
		kr_dev = st.st_dev;
		kr_ino = st.st_ino;
		kr_size = st.st_size;
		kr_mtime = st.st_mtim;
	}
	strlcpy(kr_path, guc_keyring_file, sizeof(kr_path));
	strlcpy(kr_pwpath, guc_password_file, sizeof(kr_pwpath));
	strlcpy(kr_pkcs11, pkcs11_identity(), sizeof(kr_pkcs11));
	/* Record the generation in the database (same transaction as the key change). */
	{
		uint64		gen = 0;
		Oid			t = INT8OID;
		Datum		a;

		if (cellar_keyring_generation(kr, &gen) != CELLAR_OK)
			raise_status(CELLAR_ERR_INTERNAL, "reading the keyring generation");
		a = Int64GetDatum((int64) gen);
		SPI_connect();
		if (SPI_execute_with_args("INSERT INTO cellar.keyring_state(id, generation) VALUES (true, $1) "
								  "ON CONFLICT (id) DO UPDATE SET generation = excluded.generation, written = now()",
								  1, &t, &a, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "cellar: could not record the keyring generation");
		SPI_finish();
	}
}

/* ------------------------------------------------------------------------------------------ */
/* column keys */

static ColKey *
colkey_slot(const char *name)
{
	ColKey	   *ck;

	for (int i = 0; i < ncolkeys; i++)
		if (strcmp(colkeys[i]->name, name) == 0)
			return colkeys[i];
	if (ncolkeys == maxcolkeys)
	{
		maxcolkeys = maxcolkeys ? maxcolkeys * 2 : 16;
		colkeys = colkeys ? repalloc(colkeys, maxcolkeys * sizeof(ColKey *))
			: MemoryContextAlloc(TopMemoryContext, maxcolkeys * sizeof(ColKey *));
	}
	ck = MemoryContextAllocZero(TopMemoryContext, sizeof(ColKey));
	strlcpy(ck->name, name, sizeof(ck->name));
	colkeys[ncolkeys++] = ck;
	return ck;
}

static void
check_key_name(const char *name)
{
	size_t		n = strlen(name);

	if (n == 0 || n >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cellar: a column key name has 1 to %d bytes", NAMEDATALEN - 1)));
}

/* Unwraps one blob; on a version the keyring does not know, reloads the keyring file once. */
static cellar_key *
unwrap_blob(const char *name, uint32 version, const uint8 *blob, size_t len)
{
	cellar_key *k = NULL;
	uint32		tv = 0;
	cellar_status rc = cellar_keyring_unwrap(kr, blob, len, &k, &tv);

	if (rc == CELLAR_ERR_KEY_NOT_FOUND)
	{
		/* Another session may have rotated the tenant key after this backend read the file. */
		if (keyring_refresh(true) != 0)
			raise_keyring_error();
		apply_key_history();
		rc = cellar_keyring_unwrap(kr, blob, len, &k, &tv);
	}
	if (rc != CELLAR_OK)
	{
		char	   *what = psprintf("unwrapping column key \"%s\" version %u", name, version);

		raise_status(rc, what);
	}
	approval_check("column key unwrap");
	return k;
}

/*
 * The column key `name`, validated against cellar.column_keys once per statement.
 * Raises 42704 when it does not exist.
 */
static ColKey *
colkey_get(const char *name)
{
	ColKey	   *volatile ck;
	int			rc;
	uint64		n;
	StringInfoData sig;
	Datum		arg;
	Oid			argtype = TEXTOID;
	int			mode = 0;
	KeyVer	   *vers;
	volatile int nv = 0;
	MemoryContext oldcxt;
	uint64		gen_before;

	check_key_name(name);
	ensure_keyring(false);
	ck = colkey_slot(name);
	if (ck->valid && !ck->stale && ck->gen == kr_generation)
		return ck;

	gen_before = kr_generation;
	if (!OidIsValid(column_keys_oid))
	{
		Oid			ns = get_namespace_oid("cellar", true);

		column_keys_oid = OidIsValid(ns) ? get_relname_relid("column_keys", ns) : InvalidOid;
	}
	/* Marked before reading: an invalidation arriving during the read marks it stale again. */
	ck->stale = false;
	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "cellar: SPI_connect failed: %d", rc);
	if (colkey_plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare("SELECT version, mode, wrapped, tenant_version, blind_index_version "
									   "FROM cellar.column_keys WHERE name = $1 ORDER BY version", 1, &argtype);

		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "cellar: could not prepare the column key query");
		colkey_plan = plan;
	}
	arg = CStringGetTextDatum(name);
	rc = SPI_execute_plan(colkey_plan, &arg, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "cellar: reading cellar.column_keys failed: %d", rc);
	n = SPI_processed;
	if (n == 0)
	{
		SPI_finish();
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("cellar: column key \"%s\" does not exist", name),
				 errhint("A key administrator creates it with cellar.create_column_key('%s', 'randomized').", name)));
	}

	/* Signature of the rows: versions, retirements and wrapped blobs. */
	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	initStringInfo(&sig);
	vers = palloc0(sizeof(KeyVer) * n);
	MemoryContextSwitchTo(oldcxt);
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		bool		isnull;
		int32		v = DatumGetInt32(SPI_getbinval(t, d, 1, &isnull));
		char	   *m = TextDatumGetCString(SPI_getbinval(t, d, 2, &isnull));
		Datum		w = SPI_getbinval(t, d, 3, &isnull);
		Datum		tvd;
		bool		tvnull;

		mode = mode_from_name(m);
		tvd = SPI_getbinval(t, d, 4, &tvnull);
		vers[nv].version = v;
		vers[nv].tenant_version = tvnull ? 0 : DatumGetInt32(tvd);
		vers[nv].retired = isnull;
		tvd = SPI_getbinval(t, d, 5, &tvnull);
		vers[nv].bidx_version = tvnull ? CELLAR_BLIND_INDEX_V1 : DatumGetInt32(tvd);
		appendBinaryStringInfo(&sig, (char *) &v, sizeof(v));
		appendBinaryStringInfo(&sig, (char *) &vers[nv].bidx_version, sizeof(uint32));
		appendStringInfoChar(&sig, isnull ? 'R' : 'L');
		if (!isnull)
		{
			bytea	   *b = DatumGetByteaPP(w);
			uint32		bl = VARSIZE_ANY_EXHDR(b);

			appendBinaryStringInfo(&sig, (char *) &bl, sizeof(bl));
			appendBinaryStringInfo(&sig, VARDATA_ANY(b), bl);
		}
		nv++;
	}

	if (ck->valid && ck->gen == gen_before && ck->sig_len == (Size) sig.len &&
		memcmp(ck->sig, sig.data, sig.len) == 0)
	{
		/* Unchanged since the last statement. */
		SPI_finish();
		pfree(sig.data);
		pfree(vers);
		return ck;
	}

	/* Rebuild: unwrap each retained version (the blobs are in sig, in order). */
	colkey_clear(ck);
	PG_TRY();
	{
		int			off = 0;

		for (int i = 0; i < nv; i++)
		{
			off += sizeof(int32) + sizeof(uint32) + 1;
			if (!vers[i].retired)
			{
				uint32		bl;

				memcpy(&bl, sig.data + off, sizeof(bl));
				off += sizeof(bl);
				vers[i].key = unwrap_blob(name, vers[i].version, (uint8 *) sig.data + off, bl);
				off += bl;
				if (mode != MODE_BLIND_INDEX)
				{
					cellar_status st = cellar_cell_cipher_new(vers[i].key, mode, vers[i].version, &vers[i].cipher);

					if (st != CELLAR_OK)
						raise_status(st, "making a cell cipher");
				}
				else
				{
					cellar_status st = cellar_blind_index_key_new(vers[i].key, vers[i].bidx_version, &vers[i].bkey);

					if (st != CELLAR_OK)
						raise_status(st, "making a blind-index key");
					approval_check("blind-index key derivation");
				}
			}
		}
	}
	PG_CATCH();
	{
		for (int i = 0; i < nv; i++)
		{
			cellar_cell_cipher_free(vers[i].cipher);
			cellar_blind_index_key_free(vers[i].bkey);
			cellar_key_free(vers[i].key);
		}
		pfree(vers);
		pfree(sig.data);
		PG_RE_THROW();
	}
	PG_END_TRY();
	SPI_finish();

	ck->mode = mode;
	ck->ver = vers;
	ck->nver = nv;
	ck->active = 0;
	for (int i = 0; i < nv; i++)
		if (!vers[i].retired)
			ck->active = vers[i].version;
	ck->sig = sig.data;
	ck->sig_len = sig.len;
	ck->valid = true;
	ck->gen = kr_generation;
	return ck;
}

/* The key named by a text argument, with a per-call-site fast path. */
static ColKey *
colkey_for_call(FunctionCallInfo fcinfo, text *name)
{
	FnCache    *fc = (FnCache *) fcinfo->flinfo->fn_extra;
	int			len = VARSIZE_ANY_EXHDR(name);
	char	   *s;
	ColKey	   *ck;

	if (fc && fc->ck && fc->name_len == len && memcmp(fc->name, VARDATA_ANY(name), len) == 0 &&
		fc->ck->valid && !fc->ck->stale && fc->ck->gen == kr_generation &&
		kr_checked_gen == kr_generation && kr_history_applied &&
		same_statement(kr_checked_ts, kr_checked_lxid))
		return fc->ck;
	s = text_to_cstring(name);
	ck = colkey_get(s);
	pfree(s);
	if (fc == NULL)
		fc = fcinfo->flinfo->fn_extra = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(FnCache));
	fc->ck = ck;
	fc->name_len = len;
	memcpy(fc->name, VARDATA_ANY(name), len);
	return ck;
}

static KeyVer *
colkey_version(ColKey *ck, uint32 version)
{
	for (int i = 0; i < ck->nver; i++)
		if (ck->ver[i].version == version)
			return &ck->ver[i];
	return NULL;
}

static KeyVer *
colkey_active(ColKey *ck)
{
	KeyVer	   *v = ck->active ? colkey_version(ck, ck->active) : NULL;

	if (v == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("cellar: column key \"%s\" has no retained version (every version is retired)", ck->name),
				 errhint("Create a new version with cellar.rotate_column_key('%s').", ck->name)));
	return v;
}

/* ------------------------------------------------------------------------------------------ */
/* value encoding */

typedef struct Plain
{
	uint8	   *data;			/* tag | value, or value alone for MSSQL */
	size_t		len;
	bool		owned;			/* palloc'd by us: wipe and free */
	uint8		stack[STACK_PT];
} Plain;

static void
plain_release(Plain *p)
{
	if (p->owned)
		wipe_free(p->data, p->len);
	else
		explicit_bzero(p->stack, Min(p->len, sizeof(p->stack)));
	p->data = NULL;
	p->len = 0;
}

static uint8 *
plain_alloc(Plain *p, size_t len)
{
	p->len = len;
	p->owned = len > sizeof(p->stack);
	p->data = p->owned ? palloc(len) : p->stack;
	return p->data;
}

static void
put_be64(uint8 *b, uint64 v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = (uint8) v;
}

static uint64
get_be64(const uint8 *b)
{
	uint64		v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | b[i];
	return v;
}

/* UTF-8 (server encoding) to UTF-16LE, as SQL Server stores nvarchar. */
static void
utf16le_encode(Plain *p, const char *s, int len)
{
	uint8	   *o;
	size_t		n = 0;

	if (GetDatabaseEncoding() != PG_UTF8)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("cellar: Always Encrypted text needs a UTF8 database")));
	o = plain_alloc(p, (size_t) len * 4);
	for (int i = 0; i < len;)
	{
		int			l = pg_utf_mblen((const unsigned char *) s + i);
		pg_wchar	c = utf8_to_unicode((const unsigned char *) s + i);

		i += l;
		if (c >= 0x10000)
		{
			uint16		hi = 0xD800 | ((c - 0x10000) >> 10),
						lo = 0xDC00 | ((c - 0x10000) & 0x3FF);

			o[n++] = hi & 0xff;
			o[n++] = hi >> 8;
			o[n++] = lo & 0xff;
			o[n++] = lo >> 8;
		}
		else
		{
			o[n++] = c & 0xff;
			o[n++] = c >> 8;
		}
	}
	p->len = n;
}

static text *
utf16le_decode(const uint8 *b, size_t len)
{
	/*
	 * One allocation of the largest possible size (a UTF-16 unit gives at most 3 UTF-8 bytes, a
	 * surrogate pair 4), so no regrowth leaves a copy of the plaintext behind; wiped on every path.
	 */
	size_t		cap = len / 2 * 3 + 1,
				n = 0;
	uint8	   *o;
	text	   *t;

	if (len % 2)
		ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						errmsg("cellar: an Always Encrypted text value has an odd length (not UTF-16LE nvarchar)")));
	o = palloc(cap);
	for (size_t i = 0; i < len; i += 2)
	{
		pg_wchar	c = b[i] | (b[i + 1] << 8);
		unsigned char u[8];

		if (c >= 0xD800 && c < 0xDC00 && i + 3 < len)
		{
			pg_wchar	lo = b[i + 2] | (b[i + 3] << 8);

			if (lo >= 0xDC00 && lo < 0xE000)
			{
				c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
				i += 2;
			}
		}
		if (c == 0 || (c >= 0xD800 && c < 0xE000))
		{
			wipe_free(o, cap);
			ereport(ERROR, (errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
							errmsg("cellar: the decrypted value is not valid UTF-16LE text")));
		}
		unicode_to_utf8(c, u);
		memcpy(o + n, u, pg_utf_mblen(u));
		n += pg_utf_mblen(u);
		explicit_bzero(u, sizeof(u));
	}
	t = cstring_to_text_with_len((char *) o, n);
	wipe_free(o, cap);
	return t;
}

/* Builds the plaintext of argument `argno` (tag | encoded value; MSSQL: raw bytes). */
static void
encode_arg(FunctionCallInfo fcinfo, int argno, char tag, bool mssql, Plain *p)
{
	Datum		d = PG_GETARG_DATUM(argno);

	if (mssql && tag != TAG_BYTEA && tag != TAG_TEXT)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("cellar: Always Encrypted keys take bytea or text (nvarchar) values")));
	switch (tag)
	{
		case TAG_BYTEA:
		case TAG_TEXT:
			{
				struct varlena *v = PG_DETOAST_DATUM_PACKED(d);
				size_t		n = VARSIZE_ANY_EXHDR(v);

				if (mssql && tag == TAG_TEXT)
					utf16le_encode(p, VARDATA_ANY(v), n);
				else if (mssql)
					memcpy(plain_alloc(p, n), VARDATA_ANY(v), n);
				else
				{
					uint8	   *o = plain_alloc(p, n + 1);

					o[0] = tag;
					memcpy(o + 1, VARDATA_ANY(v), n);
				}
				if ((void *) v != (void *) DatumGetPointer(d))
					wipe_free(v, VARSIZE_ANY(v));
				break;
			}
		case TAG_INT8:
		case TAG_TIMESTAMPTZ:
			{
				uint8	   *o = plain_alloc(p, 9);

				o[0] = tag;
				put_be64(o + 1, (uint64) DatumGetInt64(d));
				break;
			}
		case TAG_DATE:
			{
				uint8	   *o = plain_alloc(p, 5);
				uint32		v = (uint32) DatumGetDateADT(d);

				o[0] = tag;
				o[1] = v >> 24;
				o[2] = v >> 16;
				o[3] = v >> 8;
				o[4] = v;
				break;
			}
		case TAG_NUMERIC:
		case TAG_JSONB:
			{
				char	   *s = DatumGetCString(tag == TAG_NUMERIC ? DirectFunctionCall1(numeric_out, d)
												: DirectFunctionCall1(jsonb_out, d));
				size_t		n = strlen(s);
				uint8	   *o = plain_alloc(p, n + 1);

				o[0] = tag;
				memcpy(o + 1, s, n);
				wipe_free(s, n);
				break;
			}
	}
}

static const char *
tag_name(char tag)
{
	switch (tag)
	{
		case TAG_BYTEA:
			return "bytea";
		case TAG_TEXT:
			return "text";
		case TAG_INT8:
			return "int8";
		case TAG_NUMERIC:
			return "numeric";
		case TAG_DATE:
			return "date";
		case TAG_TIMESTAMPTZ:
			return "timestamptz";
		case TAG_JSONB:
			return "jsonb";
	}
	return "unknown";
}

/* ------------------------------------------------------------------------------------------ */
/* cells */

static void
get_ctx(FunctionCallInfo fcinfo, int argno, const uint8 **ctx, size_t *ctxlen)
{
	if (PG_NARGS() > argno)
	{
		bytea	   *c = PG_GETARG_BYTEA_PP(argno);

		*ctx = (const uint8 *) VARDATA_ANY(c);
		*ctxlen = VARSIZE_ANY_EXHDR(c);
	}
	else
	{
		*ctx = NULL;
		*ctxlen = 0;
	}
}

static void
check_mssql_ctx(ColKey *ck, size_t ctxlen)
{
	if (mode_is_mssql(ck->mode) && ctxlen != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cellar: column key \"%s\" is an Always Encrypted key, which binds no context", ck->name),
				 errhint("Call the two-argument form, or pass an empty context.")));
}

/*
 * The forms that take a context are not STRICT, so that a NULL context cannot silently turn a
 * value into NULL (cellar.ctx() of a NULL row key is NULL). Returns true when the value is NULL
 * (the result is NULL, as under STRICT); raises when the value is not NULL but the key name, the
 * context or the length is.
 */
static bool
null_value(FunctionCallInfo fcinfo, int valarg)
{
	if (PG_ARGISNULL(valarg))
		return true;
	for (int i = 0; i < PG_NARGS(); i++)
		if (i != valarg && PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("cellar: %s is NULL but the value is not",
							i == 0 ? "the column key name" : i == 2 ? "the context" : "the index length"),
					 i == 2 ? errhint("cellar.ctx() is NULL when a field is NULL (a NULL row key); the value would be lost. Bind it to a non-NULL row key, or pass '' for none.") : 0));
	return false;
}

static bytea *
encrypt_plain(ColKey *ck, const uint8 *ctx, size_t ctxlen, const uint8 *pt, size_t ptlen)
{
	KeyVer	   *v = colkey_active(ck);
	size_t		n = cellar_cell_ciphertext_len(ck->mode, ptlen),
				outlen = 0;
	bytea	   *out;
	cellar_status st;

	if (n == 0 || n > MaxAllocSize - VARHDRSZ)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("cellar: value too long to encrypt")));
	out = palloc(VARHDRSZ + n);
	st = cellar_cell_encrypt(v->cipher, ctx, ctxlen, pt, ptlen, (uint8 *) VARDATA(out), n, &outlen);
	if (st != CELLAR_OK)
	{
		char	   *what = psprintf("encrypt with column key \"%s\"", ck->name);

		pfree(out);
		raise_status(st, what);
	}
	approval_check("encrypt");
	SET_VARSIZE(out, VARHDRSZ + outlen);
	return out;
}

/* encrypt(key, value [, ctx]); deterministic: refuse keys that are not deterministic */
static Datum
do_encrypt(FunctionCallInfo fcinfo, char tag, bool det_only)
{
	ColKey	   *ck;
	const uint8 *ctx;
	size_t		ctxlen;
	Plain		p;
	bytea	   *volatile out = NULL;

	if (null_value(fcinfo, 1))
		PG_RETURN_NULL();
	ck = colkey_for_call(fcinfo, PG_GETARG_TEXT_PP(0));

	if (ck->mode == MODE_BLIND_INDEX)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("cellar: column key \"%s\" is a blind_index key; use cellar.blind_index()", ck->name)));
	if (det_only && ck->mode != CELLAR_CELL_DETERMINISTIC && ck->mode != CELLAR_CELL_MSSQL_DETERMINISTIC)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("cellar: encrypt_deterministic needs a deterministic column key; \"%s\" is %s",
							   ck->name, mode_name(ck->mode))));
	strict_check_mode(ck->mode, ck->name);
	get_ctx(fcinfo, 2, &ctx, &ctxlen);
	check_mssql_ctx(ck, ctxlen);
	encode_arg(fcinfo, 1, tag, mode_is_mssql(ck->mode), &p);
	PG_TRY();
	{
		out = encrypt_plain(ck, ctx, ctxlen, p.data, p.len);
	}
	PG_FINALLY();
	{
		plain_release(&p);
	}
	PG_END_TRY();
	PG_RETURN_BYTEA_P(out);
}

static CELLAR_NORETURN void raise_auth(ColKey *ck, uint32 version);
static void
raise_auth(ColKey *ck, uint32 version)
{
	const char *le = last_error_text();

	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 version ? errmsg("cellar: value does not authenticate under column key \"%s\" (version %u)", ck->name, version)
			 : errmsg("cellar: value does not authenticate under column key \"%s\"", ck->name),
			 errdetail("It was altered, moved from another row or column (other context), or encrypted under another key.%s%s",
					   le[0] ? " Cellar: " : "", le)));
}

/*
 * Decrypts `ct` into a palloc'd varlena; returns it with the plaintext at VARDATA and sets
 * *len. For native keys the type tag has been checked against `tag` and removed; tag 0 keeps
 * the tag in front of the value (for reencrypt).
 */
static bytea *
decrypt_cell(ColKey *ck, char tag, bytea *ct, const uint8 *ctx, size_t ctxlen, size_t *len)
{
	const uint8 *c = (const uint8 *) VARDATA_ANY(ct);
	size_t		clen = VARSIZE_ANY_EXHDR(ct);
	size_t		room = cellar_cell_plaintext_max_len(ck->mode, clen),
				outlen = 0;
	bytea	   *out;
	cellar_status st = CELLAR_ERR_AUTHENTICATION_FAILED;
	uint32		version = 0;
	bool		mssql = mode_is_mssql(ck->mode);

	if (ck->mode == MODE_BLIND_INDEX)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("cellar: column key \"%s\" is a blind_index key, which decrypts nothing", ck->name)));
	strict_check_mode(ck->mode, ck->name);
	check_mssql_ctx(ck, ctxlen);
	if (room == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("cellar: value is not a %s cell of column key \"%s\" (length %zu)", mode_name(ck->mode), ck->name, clen)));
	/* The tag lands in the last header byte so the value starts at VARDATA. */
	out = palloc0(VARHDRSZ + room + 1);
	if (!mssql)
	{
		KeyVer	   *v;

		st = cellar_cell_key_version(c, clen, &version);
		if (st != CELLAR_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("cellar: value is not a Cellar cell (column key \"%s\")", ck->name)));
		v = colkey_version(ck, version);
		if (v == NULL || v->retired)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 v ? errmsg("cellar: column key \"%s\" version %u is retired: its values are crypto-shredded", ck->name, version)
					 : errmsg("cellar: column key \"%s\" has no version %u", ck->name, version)));
		st = cellar_cell_decrypt(v->cipher, ctx, ctxlen, c, clen,
								 (uint8 *) out + (tag ? VARHDRSZ - 1 : VARHDRSZ), room, &outlen);
	}
	else
	{
		/* Always Encrypted cells name no key version: try the newest first. */
		for (int i = ck->nver - 1; i >= 0; i--)
		{
			if (ck->ver[i].retired)
				continue;
			st = cellar_cell_decrypt(ck->ver[i].cipher, NULL, 0, c, clen, (uint8 *) VARDATA(out), room, &outlen);
			if (st == CELLAR_OK || st != CELLAR_ERR_AUTHENTICATION_FAILED)
				break;
		}
	}
	if (st == CELLAR_ERR_AUTHENTICATION_FAILED)
	{
		pfree(out);
		raise_auth(ck, version);
	}
	if (st != CELLAR_OK)
	{
		char	   *what = psprintf("decrypt with column key \"%s\"", ck->name);

		pfree(out);
		raise_status(st, what);
	}
	approval_check("decrypt");
	if (!mssql && tag != 0)
	{
		char		got = outlen ? ((char *) out)[VARHDRSZ - 1] : 0;

		if (outlen == 0 || (got != tag && !(tag == TAG_BYTEA && got == TAG_TEXT)))
		{
			wipe_free(out, VARHDRSZ + room + 1);
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("cellar: the value was encrypted as %s, not %s", tag_name(got), tag_name(tag)),
					 errhint("Use the decrypt function of the value's type.")));
		}
		outlen -= 1;
	}
	*len = outlen;
	SET_VARSIZE(out, VARHDRSZ + outlen);
	return out;
}

static Datum
decode_value(char tag, bool mssql, bytea *pt, size_t len)
{
	uint8	   *b = (uint8 *) VARDATA(pt);
	Datum		r;

	switch (tag)
	{
		case TAG_BYTEA:
			return PointerGetDatum(pt);
		case TAG_TEXT:
			if (mssql)
			{
				r = PointerGetDatum(utf16le_decode(b, len));
				wipe_free(pt, VARHDRSZ + len);
				return r;
			}
			if (!pg_verifymbstr((char *) b, len, true))
			{
				wipe_free(pt, VARHDRSZ + len);
				ereport(ERROR, (errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
								errmsg("cellar: the decrypted value is not valid text in the database encoding")));
			}
			return PointerGetDatum(pt);
		case TAG_INT8:
		case TAG_TIMESTAMPTZ:
		case TAG_DATE:
			if (len != (tag == TAG_DATE ? 4 : 8))
			{
				wipe_free(pt, VARHDRSZ + len);
				ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
								errmsg("cellar: a %s value has the wrong length", tag_name(tag))));
			}
			if (tag == TAG_DATE)
				r = DateADTGetDatum((DateADT) (int32) ((uint32) b[0] << 24 | (uint32) b[1] << 16 | (uint32) b[2] << 8 | b[3]));
			else
				r = Int64GetDatum((int64) get_be64(b));
			wipe_free(pt, VARHDRSZ + len);
			return r;
		case TAG_NUMERIC:
		case TAG_JSONB:
			{
				char	   *s = palloc(len + 1);

				memcpy(s, b, len);
				s[len] = '\0';
				wipe_free(pt, VARHDRSZ + len);
				/* Wiped on an input error too (PostgreSQL's parsers keep their own copies: README). */
				PG_TRY();
				{
					if (tag == TAG_NUMERIC)
						r = DirectFunctionCall3(numeric_in, CStringGetDatum(s), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
					else
						r = DirectFunctionCall1(jsonb_in, CStringGetDatum(s));
				}
				PG_FINALLY();
				{
					explicit_bzero(s, len + 1);
				}
				PG_END_TRY();
				pfree(s);
				return r;
			}
	}
	elog(ERROR, "cellar: unknown type tag");
	return (Datum) 0;
}

static Datum
do_decrypt(FunctionCallInfo fcinfo, char tag)
{
	ColKey	   *ck;
	bytea	   *ct;
	const uint8 *ctx;
	size_t		ctxlen,
				len = 0;
	bytea	   *pt;

	if (null_value(fcinfo, 1))
		PG_RETURN_NULL();
	ck = colkey_for_call(fcinfo, PG_GETARG_TEXT_PP(0));
	ct = PG_GETARG_BYTEA_PP(1);
	get_ctx(fcinfo, 2, &ctx, &ctxlen);
	if (mode_is_mssql(ck->mode) && tag != TAG_BYTEA && tag != TAG_TEXT)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("cellar: Always Encrypted keys decrypt to bytea or text (nvarchar) only")));
	pt = decrypt_cell(ck, tag, ct, ctx, ctxlen, &len);
	return decode_value(tag, mode_is_mssql(ck->mode), pt, len);
}

/* ------------------------------------------------------------------------------------------ */
/* SQL functions: cells */

#define CELLAR_TYPED(suffix, tag) \
	PG_FUNCTION_INFO_V1(cellar_encrypt_##suffix); \
	Datum cellar_encrypt_##suffix(PG_FUNCTION_ARGS) { return do_encrypt(fcinfo, tag, false); } \
	PG_FUNCTION_INFO_V1(cellar_encrypt_det_##suffix); \
	Datum cellar_encrypt_det_##suffix(PG_FUNCTION_ARGS) { return do_encrypt(fcinfo, tag, true); } \
	PG_FUNCTION_INFO_V1(cellar_decrypt_##suffix); \
	Datum cellar_decrypt_##suffix(PG_FUNCTION_ARGS) { return do_decrypt(fcinfo, tag); } \
	PG_FUNCTION_INFO_V1(cellar_blind_index_##suffix); \
	Datum cellar_blind_index_##suffix(PG_FUNCTION_ARGS) { return do_blind_index(fcinfo, tag); }

/* blind_index(key, value, ctx [, nbytes]) */
static Datum
do_blind_index(FunctionCallInfo fcinfo, char tag)
{
	ColKey	   *ck;
	const uint8 *ctx;
	size_t		ctxlen;
	int32		nbytes;
	Plain		p;
	bytea	   *out;
	cellar_status st;
	KeyVer	   *v;

	if (null_value(fcinfo, 1))
		PG_RETURN_NULL();
	ck = colkey_for_call(fcinfo, PG_GETARG_TEXT_PP(0));
	nbytes = PG_NARGS() > 3 ? PG_GETARG_INT32(3) : 16;

	if (ck->mode != MODE_BLIND_INDEX)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("cellar: column key \"%s\" is %s; blind indexes need a blind_index key", ck->name, mode_name(ck->mode)),
						errhint("Create one with cellar.create_column_key('%s_bidx', 'blind_index').", ck->name)));
	if (nbytes < CELLAR_BLIND_INDEX_MIN_LEN || nbytes > CELLAR_BLIND_INDEX_MAX_LEN)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("cellar: a blind index has %d to %d bytes", CELLAR_BLIND_INDEX_MIN_LEN, CELLAR_BLIND_INDEX_MAX_LEN)));
	v = colkey_active(ck);
	get_ctx(fcinfo, 2, &ctx, &ctxlen);
	out = palloc(VARHDRSZ + nbytes);
	encode_arg(fcinfo, 1, tag, false, &p);
	st = cellar_blind_index_compute(v->bkey, ctx, ctxlen, p.data, p.len, (uint8 *) VARDATA(out), nbytes);
	plain_release(&p);
	if (st != CELLAR_OK)
		raise_status(st, "blind index");
	approval_check("blind index");
	SET_VARSIZE(out, VARHDRSZ + nbytes);
	PG_RETURN_BYTEA_P(out);
}

CELLAR_TYPED(bytea, TAG_BYTEA)
CELLAR_TYPED(text, TAG_TEXT)
CELLAR_TYPED(int8, TAG_INT8)
CELLAR_TYPED(numeric, TAG_NUMERIC)
CELLAR_TYPED(date, TAG_DATE)
CELLAR_TYPED(timestamptz, TAG_TIMESTAMPTZ)
CELLAR_TYPED(jsonb, TAG_JSONB)

/* reencrypt(key, ct, ctx): the same plaintext under the active version (key rotation). */
PG_FUNCTION_INFO_V1(cellar_reencrypt);
Datum
cellar_reencrypt(PG_FUNCTION_ARGS)
{
	ColKey	   *ck;
	bytea	   *ct;
	const uint8 *ctx;
	size_t		ctxlen,
				len = 0;
	bytea	   *pt;
	bytea	   *volatile out = NULL;
	bool		mssql;

	if (null_value(fcinfo, 1))
		PG_RETURN_NULL();
	ck = colkey_for_call(fcinfo, PG_GETARG_TEXT_PP(0));
	ct = PG_GETARG_BYTEA_PP(1);
	mssql = mode_is_mssql(ck->mode);
	get_ctx(fcinfo, 2, &ctx, &ctxlen);
	/* Native cells keep their type tag: decrypt with tag 0 and seal the same bytes again. */
	pt = decrypt_cell(ck, mssql ? TAG_BYTEA : 0, ct, ctx, ctxlen, &len);
	PG_TRY();
	{
		out = encrypt_plain(ck, ctx, ctxlen, (uint8 *) VARDATA(pt), len);
	}
	PG_FINALLY();
	{
		wipe_free(pt, VARHDRSZ + len);
	}
	PG_END_TRY();
	PG_RETURN_BYTEA_P(out);
}

/* ctx(table, column, row_key): length-prefixed, so no two triples give the same bytes. */
PG_FUNCTION_INFO_V1(cellar_ctx);
Datum
cellar_ctx(PG_FUNCTION_ARGS)
{
	StringInfoData s;
	bytea	   *out;

	initStringInfo(&s);
	appendStringInfoString(&s, "cellar ctx v1");
	for (int i = 0; i < PG_NARGS(); i++)
	{
		text	   *t = PG_GETARG_TEXT_PP(i);
		uint32		n = VARSIZE_ANY_EXHDR(t);
		uint8		be[4] = {n >> 24, n >> 16, n >> 8, n};

		appendBinaryStringInfo(&s, (char *) be, 4);
		appendBinaryStringInfo(&s, VARDATA_ANY(t), n);
	}
	out = palloc(VARHDRSZ + s.len);
	memcpy(VARDATA(out), s.data, s.len);
	SET_VARSIZE(out, VARHDRSZ + s.len);
	pfree(s.data);
	PG_RETURN_BYTEA_P(out);
}

PG_FUNCTION_INFO_V1(cellar_key_version);
Datum
cellar_key_version(PG_FUNCTION_ARGS)
{
	bytea	   *ct = PG_GETARG_BYTEA_PP(0);
	uint32		v = 0;

	if (cellar_cell_key_version((const uint8 *) VARDATA_ANY(ct), VARSIZE_ANY_EXHDR(ct), &v) != CELLAR_OK)
		PG_RETURN_NULL();
	PG_RETURN_INT32((int32) v);
}

/* ------------------------------------------------------------------------------------------ */
/* SQL functions: administration (EXECUTE revoked from PUBLIC in the install script) */

static void
lock_key_table(void)
{
	if (SPI_execute("LOCK TABLE cellar.column_keys IN SHARE ROW EXCLUSIVE MODE", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "cellar: could not lock cellar.column_keys");
}

/*
 * A new tenant key generated in the PKCS#11 token (cellar.pkcs11_token, labelled
 * cellar.pkcs11_key_label): a new keyring (`kr_in` NULL) or a rotation of `kr_in`. Raises on
 * failure. The token generates the key; the module's indicator reports 0 (counted).
 */
static void
token_new_version(cellar_keyring *kr_in, cellar_keyring **kr_out, uint32 *newv)
{
	cellar_pkcs11_config c;
	uint8	   *pin = NULL;
	size_t		pinlen = 0;
	cellar_status rc;
	const char *label = guc_pkcs11_key_label && guc_pkcs11_key_label[0] ? guc_pkcs11_key_label : "cellar-tenant";
	int			code;

	kr_err_msg[0] = kr_err_hint[0] = kr_err_detail[0] = '\0';
	code = pkcs11_config(&c, &pin, &pinlen, true);
	if (code)
	{
		kr_err_code = code;
		raise_keyring_error();
	}
	if (kr_in == NULL)
		rc = cellar_keyring_new_pkcs11(&c, (const uint8_t *) label, strlen(label), kr_out);
	else
		rc = cellar_keyring_rotate_pkcs11(kr_in, &c, (const uint8_t *) label, strlen(label), newv);
	wipe_free(pin, pinlen + 1);
	if (rc != CELLAR_OK)
	{
		kr_err_code = pkcs11_error(rc, kr_in ? "rotating the tenant key in the PKCS#11 token"
								   : "creating the tenant key in the PKCS#11 token");
		raise_keyring_error();
	}
	{
		int32		a = cellar_last_operation_approved();

		if (a == 1)
			approved_ops++;
		else if (a == 0)
			unapproved_ops++;
	}
}

PG_FUNCTION_INFO_V1(cellar_create_keyring);
Datum
cellar_create_keyring(PG_FUNCTION_ARGS)
{
	struct stat st;
	cellar_status rc;
	uint32		active = 0;

	if (!settings_present())
		raise_keyring_error();
	if (stat(guc_keyring_file, &st) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("cellar: keyring file \"%s\" already exists", guc_keyring_file),
				 errhint("Rotate it with cellar.rotate_tenant_key(); it is never overwritten.")));
	keyring_drop();
	SPI_connect();
	if (SPI_execute("DELETE FROM cellar.retired_tenant_versions", false, 0) != SPI_OK_DELETE ||
		SPI_execute("DELETE FROM cellar.keyring_state", false, 0) != SPI_OK_DELETE)
		elog(ERROR, "cellar: could not clear the keyring history");
	SPI_finish();
	if (pkcs11_configured())
		token_new_version(NULL, &kr, NULL);
	else
	{
		rc = cellar_keyring_new(NULL, &kr);
		if (rc != CELLAR_OK)
			raise_status(rc, "creating the tenant keyring");
		approval_check("keyring generate");
	}
	PG_TRY();
	{
		write_keyring_file();
	}
	PG_CATCH();
	{
		keyring_drop();
		PG_RE_THROW();
	}
	PG_END_TRY();
	kr_session_locked = false;
	kr_history_applied = true;
	kr_generation++;
	cellar_keyring_active_version(kr, &active);
	PG_RETURN_INT32(active);
}

static int
mode_arg(text *t)
{
	char	   *s = text_to_cstring(t);
	int			m = mode_from_name(s);

	if (m == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cellar: unknown column key mode \"%s\"", s),
				 errhint("randomized, deterministic, blind_index, mssql_randomized or mssql_deterministic")));
	return m;
}

/* Inserts a version of a column key: wraps `k` under the active tenant version. */
static void
insert_version(const char *name, int mode, int32 version, cellar_key *k)
{
	uint8		blob[CELLAR_KEYRING_MAX_WRAPPED_LEN];
	size_t		bl = 0;
	uint32		tv = 0;
	cellar_status rc = cellar_keyring_wrap(kr, k, blob, sizeof(blob), &bl);
	Oid			types[6] = {TEXTOID, INT4OID, TEXTOID, INT4OID, BYTEAOID, INT4OID};
	Datum		vals[6];
	char		nulls[7] = "      ";
	bytea	   *b;

	if (rc != CELLAR_OK)
		raise_status(rc, "wrapping a column key");
	approval_check("column key wrap");
	cellar_keyring_active_version(kr, &tv);
	b = palloc(VARHDRSZ + bl);
	memcpy(VARDATA(b), blob, bl);
	SET_VARSIZE(b, VARHDRSZ + bl);
	vals[0] = CStringGetTextDatum(name);
	vals[1] = Int32GetDatum(version);
	vals[2] = CStringGetTextDatum(mode_name(mode));
	vals[3] = Int32GetDatum((int32) tv);
	vals[4] = PointerGetDatum(b);
	vals[5] = Int32GetDatum(BIDX_NEW_VERSION);
	if (mode != MODE_BLIND_INDEX)
		nulls[5] = 'n';
	if (SPI_execute_with_args("INSERT INTO cellar.column_keys(name, version, mode, tenant_version, wrapped, blind_index_version) "
							  "VALUES ($1, $2, $3, $4, $5, $6)", 6, types, vals, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "cellar: could not insert into cellar.column_keys");
	invalidate_all();
}

/* The mode and latest version of an existing column key (0, 0 when none); SPI connected. */
static void
existing_key(const char *name, int *mode, int32 *latest)
{
	Oid			t = TEXTOID;
	Datum		a = CStringGetTextDatum(name);

	*mode = 0;
	*latest = 0;
	if (SPI_execute_with_args("SELECT mode, max(version) FROM cellar.column_keys WHERE name = $1 GROUP BY mode",
							  1, &t, &a, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "cellar: reading cellar.column_keys failed");
	if (SPI_processed > 0)
	{
		bool		isnull;

		*mode = mode_from_name(TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)));
		*latest = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}
}

static int32
add_column_key(const char *name, int mode_in, bool must_exist, cellar_key *imported)
{
	volatile int mode = mode_in;
	int			have_mode;
	int32		latest;
	cellar_key *k = imported;
	cellar_status rc;

	check_key_name(name);
	strict_check_mode(mode, name);
	SPI_connect();
	lock_key_table();
	ensure_keyring(true);
	existing_key(name, &have_mode, &latest);
	if (must_exist && latest == 0)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("cellar: column key \"%s\" does not exist", name)));
	if (!must_exist && latest != 0)
		ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT),
						errmsg("cellar: column key \"%s\" already exists", name),
						errhint("Add a version with cellar.rotate_column_key('%s').", name)));
	if (must_exist)
		mode = have_mode;
	if (k == NULL)
	{
		rc = cellar_key_generate(CELLAR_KEY_AES256, &k);
		if (rc != CELLAR_OK)
			raise_status(rc, "generating a column key");
		approval_check("key generate");
	}
	PG_TRY();
	{
		insert_version(name, mode, latest + 1, k);
	}
	PG_FINALLY();
	{
		cellar_key_free(k);
	}
	PG_END_TRY();
	SPI_finish();
	return latest + 1;
}

PG_FUNCTION_INFO_V1(cellar_create_column_key);
Datum
cellar_create_column_key(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int			mode = mode_arg(PG_GETARG_TEXT_PP(1));

	PG_RETURN_INT32(add_column_key(name, mode, false, NULL));
}

PG_FUNCTION_INFO_V1(cellar_rotate_column_key);
Datum
cellar_rotate_column_key(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_INT32(add_column_key(name, 0, true, NULL));
}

/*
 * import_column_key(name, mode, key_file): a 32-byte raw key from a file on the server (for
 * example an Always Encrypted column encryption key), owned by the server user, mode 0600.
 * Raw key entry is not an approved service: refused under cellar.fips_strict.
 */
PG_FUNCTION_INFO_V1(cellar_import_column_key);
Datum
cellar_import_column_key(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int			mode = mode_arg(PG_GETARG_TEXT_PP(1));
	char	   *path = text_to_cstring(PG_GETARG_TEXT_PP(2));
	uint8	   *raw = NULL;
	size_t		rawlen = 0;
	cellar_key *k = NULL;
	cellar_status rc;

	if (guc_fips_strict)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("cellar.fips_strict: raw key entry is not an approved operation"),
						errhint("Generate column keys in the module with cellar.create_column_key().")));
	if ((kr_err_code = read_file(path, "key file", true, MAX_SECRET_FILE, &raw, &rawlen)) != 0)
		raise_keyring_error();
	rc = cellar_key_import(CELLAR_KEY_AES256, raw, rawlen, &k);
	wipe_free(raw, rawlen + 1);
	if (rc != CELLAR_OK)
		raise_status(rc, "importing the key file (32 raw bytes)");
	{
		int32		a = cellar_last_operation_approved();

		if (a == 0)
			unapproved_ops++;
	}
	PG_RETURN_INT32(add_column_key(name, mode, false, k));
}

PG_FUNCTION_INFO_V1(cellar_retire_column_key);
Datum
cellar_retire_column_key(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int32		version = PG_GETARG_INT32(1);
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		vals[2] = {CStringGetTextDatum(name), Int32GetDatum(version)};

	SPI_connect();
	lock_key_table();
	if (SPI_execute_with_args("UPDATE cellar.column_keys SET wrapped = NULL, tenant_version = NULL, retired = now() "
							  "WHERE name = $1 AND version = $2 AND wrapped IS NOT NULL",
							  2, types, vals, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "cellar: could not update cellar.column_keys");
	if (SPI_processed == 0)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
						errmsg("cellar: column key \"%s\" has no retained version %d", name, version)));
	SPI_finish();
	invalidate_all();
	PG_RETURN_VOID();
}

/* rotate_tenant_key(): new tenant version; every column key blob rewrapped; no row touched. */
PG_FUNCTION_INFO_V1(cellar_rotate_tenant_key);
Datum
cellar_rotate_tenant_key(PG_FUNCTION_ARGS)
{
	uint32		newv = 0;
	cellar_status rc;
	uint64		n;
	Oid			types[4] = {BYTEAOID, INT4OID, TEXTOID, INT4OID};

	SPI_connect();
	lock_key_table();
	ensure_keyring(true);
	if (pkcs11_configured())
		token_new_version(kr, NULL, &newv);
	else
	{
		rc = cellar_keyring_rotate(kr, NULL, &newv);
		if (rc != CELLAR_OK)
			raise_status(rc, "rotating the tenant key");
		approval_check("tenant key rotate");
	}
	/* The file first: another session that sees the rewrapped rows must find the new version. */
	write_keyring_file();
	kr_generation++;
	if (SPI_execute("SELECT name, version, wrapped FROM cellar.column_keys WHERE wrapped IS NOT NULL ORDER BY name, version",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "cellar: reading cellar.column_keys failed");
	n = SPI_processed;
	{
		SPITupleTable *tt = SPI_tuptable;

		for (uint64 i = 0; i < n; i++)
		{
			bool		isnull;
			Datum		name = SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull);
			Datum		ver = SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &isnull);
			bytea	   *w = DatumGetByteaPP(SPI_getbinval(tt->vals[i], tt->tupdesc, 3, &isnull));
			uint8		out[CELLAR_KEYRING_MAX_WRAPPED_LEN];
			size_t		ol = 0;
			bytea	   *b;
			Datum		vals[4];

			rc = cellar_keyring_rewrap(kr, (uint8 *) VARDATA_ANY(w), VARSIZE_ANY_EXHDR(w), out, sizeof(out), &ol);
			if (rc != CELLAR_OK)
				raise_status(rc, "rewrapping a column key");
			approval_check("rewrap");
			b = palloc(VARHDRSZ + ol);
			memcpy(VARDATA(b), out, ol);
			SET_VARSIZE(b, VARHDRSZ + ol);
			vals[0] = PointerGetDatum(b);
			vals[1] = Int32GetDatum((int32) newv);
			vals[2] = name;
			vals[3] = ver;
			if (SPI_execute_with_args("UPDATE cellar.column_keys SET wrapped = $1, tenant_version = $2 "
									  "WHERE name = $3 AND version = $4", 4, types, vals, NULL, false, 0) != SPI_OK_UPDATE)
				elog(ERROR, "cellar: could not update cellar.column_keys");
		}
	}
	SPI_finish();
	invalidate_all();
	PG_RETURN_INT32((int32) newv);
}

/* retire_tenant_key(version): crypto-shreds a tenant version no column key still needs. */
PG_FUNCTION_INFO_V1(cellar_retire_tenant_key);
Datum
cellar_retire_tenant_key(PG_FUNCTION_ARGS)
{
	int32		version = PG_GETARG_INT32(0);
	Oid			t = INT4OID;
	Datum		a = Int32GetDatum(version);
	cellar_status rc;
	int64		still;
	bool		isnull;

	SPI_connect();
	lock_key_table();
	ensure_keyring(true);
	if (SPI_execute_with_args("SELECT count(*) FROM cellar.column_keys WHERE tenant_version = $1 AND wrapped IS NOT NULL",
							  1, &t, &a, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "cellar: reading cellar.column_keys failed");
	still = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (still > 0)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("cellar: tenant key version %d still wraps %lld column key version(s)", version, (long long) still),
						errhint("Run cellar.rotate_tenant_key() first.")));
	rc = cellar_keyring_retire(kr, (uint32) version);
	if (rc != CELLAR_OK)
		raise_status(rc, "retiring a tenant key version");
	write_keyring_file();
	if (SPI_execute_with_args("INSERT INTO cellar.retired_tenant_versions(version) VALUES ($1) ON CONFLICT DO NOTHING",
							  1, &t, &a, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "cellar: could not record the retirement");
	SPI_finish();
	invalidate_all();
	PG_RETURN_VOID();
}

/* lock(): wipes this backend's keys; unlock(): imports them again from the files. */
PG_FUNCTION_INFO_V1(cellar_lock);
Datum
cellar_lock(PG_FUNCTION_ARGS)
{
	if (kr)
		cellar_keyring_lock(kr);
	keyring_drop();
	kr_session_locked = true;
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(cellar_unlock);
Datum
cellar_unlock(PG_FUNCTION_ARGS)
{
	kr_session_locked = false;
	keyring_drop();
	ensure_keyring(true);
	PG_RETURN_VOID();
}

/* lock_tenant(): a marker file beside the keyring file locks every backend at its next statement. */
PG_FUNCTION_INFO_V1(cellar_lock_tenant);
Datum
cellar_lock_tenant(PG_FUNCTION_ARGS)
{
	char	   *m;
	int			fd;

	if (!settings_present())
		raise_keyring_error();
	m = marker_path();
	fd = open(m, O_WRONLY | O_CREAT | O_CLOEXEC, S_IRUSR | S_IWUSR);
	if (fd < 0)
		ereport(ERROR, (errcode_for_file_access(), errmsg("cellar: could not create \"%s\": %m", m)));
	close(fd);
	if (kr)
		cellar_keyring_lock(kr);
	keyring_drop();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(cellar_unlock_tenant);
Datum
cellar_unlock_tenant(PG_FUNCTION_ARGS)
{
	char	   *m;

	if (!settings_present())
		raise_keyring_error();
	m = marker_path();
	if (unlink(m) != 0 && errno != ENOENT)
		ereport(ERROR, (errcode_for_file_access(), errmsg("cellar: could not remove \"%s\": %m", m)));
	kr_session_locked = false;
	keyring_drop();
	ensure_keyring(true);
	PG_RETURN_VOID();
}

/* status(): one row; never raises for keyring trouble (it is reported in the row). */
PG_FUNCTION_INFO_V1(cellar_status_fn);
Datum
cellar_status_fn(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		v[13];
	bool		nulls[13] = {0};
	int			code;
	const char *state;
	uint32		active = 0;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "cellar: status() must return a record");
	desc = BlessTupleDesc(desc);
	code = keyring_refresh(false);
	if (code == 0 && !kr_history_applied)
	{
		/* Re-apply recorded retirements; a failure is reported in the row, not raised. */
		MemoryContext oldcxt = CurrentMemoryContext;
		ResourceOwner oldowner = CurrentResourceOwner;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(oldcxt);
		PG_TRY();
		{
			apply_key_history();
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcxt);
			CurrentResourceOwner = oldowner;
		}
		PG_CATCH();
		{
			ErrorData  *e;

			MemoryContextSwitchTo(oldcxt);
			e = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcxt);
			CurrentResourceOwner = oldowner;
			strlcpy(kr_err_msg, e->message, sizeof(kr_err_msg));
			FreeErrorData(e);
			code = kr_err_code = ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
		}
		PG_END_TRY();
	}
	if (code == 0)
		state = "unlocked";
	else if (guc_keyring_file == NULL || guc_keyring_file[0] == '\0' ||
			 guc_password_file == NULL || guc_password_file[0] == '\0')
		state = "not configured";
	else if (kr_tenant_locked)
		state = "locked (tenant)";
	else if (kr_session_locked)
		state = "locked (session)";
	else
		state = "error";

	v[0] = CStringGetTextDatum(cellar_fips_module_version());
	v[1] = CStringGetTextDatum(cellar_version());
	v[2] = BoolGetDatum(cellar_fips_mode() == 1);
	v[3] = BoolGetDatum(cellar_fips_self_test_passed() == 1);
	v[4] = BoolGetDatum(guc_fips_strict);
	v[5] = CStringGetTextDatum(guc_keyring_file ? guc_keyring_file : "");
	v[6] = CStringGetTextDatum(state);
	if (kr && cellar_keyring_active_version(kr, &active) == CELLAR_OK)
		v[7] = Int32GetDatum((int32) active);
	else
		nulls[7] = true;
	if (kr)
	{
		size_t		cnt = 0;
		uint32	   *vs;
		uint8	   *ids;
		Datum	   *ds;

		cellar_keyring_versions(kr, NULL, NULL, 0, &cnt);
		vs = palloc0(sizeof(uint32) * (cnt + 1));
		ids = palloc0(16 * (cnt + 1));
		ds = palloc0(sizeof(Datum) * (cnt + 1));
		if (cellar_keyring_versions(kr, vs, ids, cnt, &cnt) != CELLAR_OK)
			cnt = 0;
		for (size_t i = 0; i < cnt; i++)
			ds[i] = Int32GetDatum((int32) vs[i]);
		v[8] = PointerGetDatum(construct_array(ds, cnt, INT4OID, 4, true, TYPALIGN_INT));
	}
	else
		nulls[8] = true;
	v[9] = Int64GetDatum(approved_ops);
	v[10] = Int64GetDatum(unapproved_ops);
	if (code)
		v[11] = CStringGetTextDatum(kr_err_msg);
	else
		nulls[11] = true;
	/* Whether the active tenant version is held by a PKCS#11 token. */
	{
		uint8		id[CELLAR_KEY_ID_LEN];
		uint32		flags = 0;

		if (kr && active && cellar_keyring_version_info(kr, active, id, &flags) == CELLAR_OK)
			v[12] = BoolGetDatum((flags & CELLAR_KEYRING_VERSION_PKCS11) != 0);
		else
			nulls[12] = true;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, v, nulls)));
}

/*
 * Relcache invalidation of cellar.column_keys (sent at commit by the statement trigger below, so
 * after any change of a row by any session): every cached column key is re-read, and re-unwrapped
 * only if its rows changed. Other backends take the message at their next transaction start or
 * new lock. Only flags are touched here (callbacks run at delicate times).
 */
static void
relcache_cb(Datum arg, Oid relid)
{
	if (relid != InvalidOid && relid != column_keys_oid)
		return;
	for (int i = 0; i < ncolkeys; i++)
		colkeys[i]->stale = true;
	if (relid == InvalidOid)
		column_keys_oid = InvalidOid;	/* the extension may have been dropped and re-created */
}

PG_FUNCTION_INFO_V1(cellar_column_keys_changed);
Datum
cellar_column_keys_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "cellar: column_keys_changed() is a trigger");
	CacheInvalidateRelcache(td->tg_relation);
	return PointerGetDatum(NULL);
}

/* ------------------------------------------------------------------------------------------ */

void
_PG_init(void)
{
	cellar_status rc;

	DefineCustomStringVariable("cellar.keyring_file",
							   "Sealed tenant keyring file (cellar_keyring_export with a password).",
							   "Per database with ALTER DATABASE ... SET. Relative paths are relative to the data directory.",
							   &guc_keyring_file, "", PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("cellar.password_file",
							   "File holding the keyring's password; owned by the server user, mode 0600.",
							   NULL, &guc_password_file, "", PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("cellar.fips_strict",
							 "Refuse operations the FIPS module's indicator does not approve (deterministic and Always Encrypted cells, raw key entry).",
							 NULL, &guc_fips_strict, false, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("cellar.keyring_iterations",
							"PBKDF2 iterations when the keyring file is written.",
							NULL, &guc_iterations, CELLAR_PASSWORD_DEFAULT_ITERATIONS,
							CELLAR_PASSWORD_MIN_ITERATIONS, CELLAR_PASSWORD_MAX_ITERATIONS,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("cellar.pkcs11_module",
							   "PKCS#11 module holding the tenant key (empty: the tenant key is in the keyring file).",
							   "With it, cellar.create_keyring() and cellar.rotate_tenant_key() generate tenant keys in the token, and a keyring file that refers to token keys is attached with the PIN.",
							   &guc_pkcs11_module, "", PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("cellar.pkcs11_token",
							   "Label of the PKCS#11 token new tenant keys are generated in.",
							   "Attaching finds the token by the serial the keyring file records.",
							   &guc_pkcs11_token, "", PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("cellar.pkcs11_pin_file",
							   "File holding the token's user PIN; owned by the server user, mode 0600.",
							   NULL, &guc_pkcs11_pin_file, "", PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("cellar.pkcs11_key_label",
							   "CKA_LABEL of tenant keys generated in the token.",
							   NULL, &guc_pkcs11_key_label, "cellar-tenant", PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("cellar.pkcs11_allow_zero_padded_kwp",
							 "Accept a token whose RFC 5649 wrap zero-pads its input (SoftHSM 2.6; docs/KEYS.md).",
							 NULL, &guc_pkcs11_zero_padded, false, PGC_SUSET, 0, NULL, NULL, NULL);
	MarkGUCPrefixReserved("cellar");

	if ((cellar_abi_version() >> 16) != (CELLAR_ABI_VERSION >> 16) ||
		(int) (cellar_abi_version() & 0xffff) < (int) (CELLAR_ABI_VERSION & 0xffff))
		ereport(ERROR, (errmsg("cellar: libcellar ABI %u does not match the header's %u",
							   cellar_abi_version(), (unsigned) CELLAR_ABI_VERSION)));
	rc = cellar_init(0);
	if (rc != CELLAR_OK)
		ereport(ERROR, (errmsg("cellar: cellar_init failed: %s", cellar_status_name(rc))));
	on_proc_exit(cellar_exit, (Datum) 0);
	CacheRegisterRelcacheCallback(relcache_cb, (Datum) 0);
}
