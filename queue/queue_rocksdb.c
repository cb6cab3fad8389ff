/* queue_rocksdb.c — the production queue backend on RocksDB (C API).
 *
 * Why: RocksDB gives riptide a WAL with group-committable synced writes, atomic multi-CF
 * batches and ordered iteration, which is all a mail queue needs. The data is short-lived:
 * almost every key is written once and deleted seconds later, so the options aim at that:
 *  - WAL always on; sync is chosen per write (accept = sync, done = no sync).
 *  - Memtables sized from opts (default 64 MiB), two merged per flush so a put and its
 *    delete landing in neighbouring memtables cancel before reaching disk.
 *  - max_total_wal_size bounded (4 memtables) so the slow-filling meta/sched CFs are flushed
 *    and old WAL files can go instead of growing the spool without limit.
 *  - Level compaction with dynamic level bytes, plus a compact-on-deletion collector so files
 *    dense with tombstones are compacted soon, dropping put+delete pairs and the tombstones.
 *  - Bodies are large and never updated: LZ4, and optionally BlobDB (blob_bodies) with blob
 *    GC so compaction moves keys, not message bytes.
 * Column families: "default" (unused, RocksDB requires it), "meta", "body", "sched".
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "queue/queue.h"
#include "queue/queue_types.h"

#define DEFAULT_WRITE_BUFFER ((size_t)64 << 20)

enum { CF_DEFAULT, CF_META, CF_BODY, CF_SCHED, CF_COUNT };

static const char *const cf_names[CF_COUNT] = {"default", "meta", "body", "sched"};

struct rdb_q {
	rocksdb_t *db;
	rocksdb_options_t *dbopts;
	rocksdb_options_t *cfopts[CF_COUNT];
	rocksdb_block_based_table_options_t *table[CF_COUNT];
	rocksdb_cache_t *cache;
	rocksdb_column_family_handle_t *cf[CF_COUNT];
	rocksdb_writeoptions_t *wo_sync, *wo_nosync;
	rocksdb_readoptions_t *ro_get;
	char *path; /* for reopening (rdb_recover) */
};

static const char rdb_closed[] = "queue rocksdb: store closed after a failed reopen";

/* Report a RocksDB error string (and free it). Returns -EIO. */
static int rdb_fail(char *rerr, char *err, size_t errlen, const char *what)
{
	queue_errf(err, errlen, "queue rocksdb: %s: %s", what, rerr ? rerr : "unknown error");
	rocksdb_free(rerr);
	return -EIO;
}

/* A write error: -ENOSPC when the file system is full (RocksDB reports ENOSPC as "No space
 * left on device" / status subcode NoSpace), else -EIO; the message goes to err. */
static int rdb_write_fail(char *rerr, char *err, size_t errlen)
{
	bool full = rerr && (strstr(rerr, "No space left") || strstr(rerr, "NoSpace"));

	rdb_fail(rerr, err, errlen, "write");
	return full ? -ENOSPC : -EIO;
}

/* ---- options ---- */

static void rdb_db_options(rocksdb_options_t *o, const struct queue_opts *opts)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	size_t wbs = opts->write_buffer_size ? opts->write_buffer_size : DEFAULT_WRITE_BUFFER;

	rocksdb_options_set_create_if_missing(o, 1);
	rocksdb_options_set_create_missing_column_families(o, 1);
	rocksdb_options_increase_parallelism(o, ncpu > 1 ? (int)ncpu : 2);
	rocksdb_options_set_max_background_jobs(o, ncpu > 4 ? 4 : 2);
	rocksdb_options_set_max_total_wal_size(o, 4 * (uint64_t)wbs);
	rocksdb_options_set_bytes_per_sync(o, 1 << 20);
	rocksdb_options_set_keep_log_file_num(o, 4);
	rocksdb_options_set_max_log_file_size(o, 8 << 20);
	rocksdb_options_set_info_log_level(o, 2); /* WARN: the info LOG is not an audit trail */
	rocksdb_options_set_max_open_files(o, 1024);
}

/* Per-CF options; every CF starts as a copy of the DB options. */
static void rdb_cf_options(struct rdb_q *r, int c, const struct queue_opts *opts)
{
	rocksdb_options_t *o = r->cfopts[c];
	rocksdb_block_based_table_options_t *t = r->table[c];
	size_t wbs = opts->write_buffer_size ? opts->write_buffer_size : DEFAULT_WRITE_BUFFER;

	rocksdb_options_set_compaction_style(o, rocksdb_level_compaction);
	rocksdb_options_set_level_compaction_dynamic_level_bytes(o, 1);
	rocksdb_options_set_write_buffer_size(o, c == CF_BODY ? wbs : wbs / 4);
	rocksdb_options_set_max_write_buffer_number(o, 4);
	rocksdb_options_set_min_write_buffer_number_to_merge(o, 2);
	rocksdb_options_add_compact_on_deletion_collector_factory(o, 1024, 256);
	rocksdb_options_set_compression(o, c == CF_SCHED ? rocksdb_no_compression
							 : rocksdb_lz4_compression);
	rocksdb_block_based_options_set_block_cache(t, r->cache);
	if (c == CF_META || c == CF_BODY) {
		/* point lookups: a bloom filter saves disk reads for ids not in a file. The
		 * table options take ownership of the policy. */
		rocksdb_filterpolicy_t *bloom = rocksdb_filterpolicy_create_bloom(10);

		if (bloom)
			rocksdb_block_based_options_set_filter_policy(t, bloom);
	}
	rocksdb_options_set_block_based_table_factory(o, t);
	if (c == CF_BODY && opts->blob_bodies) {
		rocksdb_options_set_enable_blob_files(o, 1);
		rocksdb_options_set_min_blob_size(o, 256);
		rocksdb_options_set_blob_compression_type(o, rocksdb_lz4_compression);
		rocksdb_options_set_enable_blob_gc(o, 1);
	}
}

/* Create every options object. Returns 0 or -ENOMEM. */
static int rdb_make_options(struct rdb_q *r, const struct queue_opts *opts)
{
	r->dbopts = rocksdb_options_create();
	r->cache = rocksdb_cache_create_lru(32 << 20);
	r->wo_sync = rocksdb_writeoptions_create();
	r->wo_nosync = rocksdb_writeoptions_create();
	r->ro_get = rocksdb_readoptions_create();
	if (!r->dbopts || !r->cache || !r->wo_sync || !r->wo_nosync || !r->ro_get)
		return -ENOMEM;
	rocksdb_writeoptions_set_sync(r->wo_sync, 1);
	rocksdb_writeoptions_set_sync(r->wo_nosync, 0);
	rdb_db_options(r->dbopts, opts);
	for (int c = 0; c < CF_COUNT; c++) {
		r->cfopts[c] = rocksdb_options_create_copy(r->dbopts);
		r->table[c] = rocksdb_block_based_options_create();
		if (!r->cfopts[c] || !r->table[c])
			return -ENOMEM;
		rdb_cf_options(r, c, opts);
	}
	return 0;
}

/* ---- open / close ---- */

/* Open the database at r->path with r's options into r->db / r->cf. Returns 0 or -EIO (r->db
 * NULL). */
static int rdb_open_db(struct rdb_q *r, char *err, size_t errlen)
{
	char *rerr = NULL;

	r->db =
	    rocksdb_open_column_families(r->dbopts, r->path, CF_COUNT, cf_names,
					 (const rocksdb_options_t *const *)r->cfopts, r->cf, &rerr);
	if (rerr) {
		r->db = NULL;
		memset(r->cf, 0, sizeof(r->cf));
		return rdb_fail(rerr, err, errlen, r->path);
	}
	return 0;
}

/* Close the database (not the options) so that it can be opened again. */
static void rdb_close_db(struct rdb_q *r)
{
	for (int c = 0; c < CF_COUNT; c++)
		if (r->cf[c])
			rocksdb_column_family_handle_destroy(r->cf[c]);
	memset(r->cf, 0, sizeof(r->cf));
	if (r->db)
		rocksdb_close(r->db);
	r->db = NULL;
}

/* Recover from a background error (disk full): RocksDB's C API has no DB::Resume, so close and
 * reopen; the WAL replay keeps every acknowledged write. The caller holds the queue exclusively. */
static int rdb_recover(void *state, char *err, size_t errlen)
{
	struct rdb_q *r = state;

	rdb_close_db(r);
	return rdb_open_db(r, err, errlen);
}

/* A clean close writes the memtables to SST files first, so the next open does not replay up to
 * max_total_wal_size of write-ahead log before riptide can serve (a crash still replays it:
 * that is what keeps acknowledged mail). A failed flush only costs that replay. */
static void rdb_flush_all(struct rdb_q *r)
{
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
	char *rerr = NULL;

	if (!fo || !r->db)
		goto out;
	rocksdb_flushoptions_set_wait(fo, 1);
	for (int c = 0; c < CF_COUNT && !rerr; c++)
		if (r->cf[c])
			rocksdb_flush_cf(r->db, fo, r->cf[c], &rerr);
	free(rerr);
out:
	if (fo)
		rocksdb_flushoptions_destroy(fo);
}

static void rdb_close(void *state)
{
	struct rdb_q *r = state;

	if (!r)
		return;
	rdb_flush_all(r);
	rdb_close_db(r);
	for (int c = 0; c < CF_COUNT; c++) {
		if (r->cfopts[c])
			rocksdb_options_destroy(r->cfopts[c]);
		if (r->table[c])
			rocksdb_block_based_options_destroy(r->table[c]);
	}
	if (r->cache)
		rocksdb_cache_destroy(r->cache);
	if (r->dbopts)
		rocksdb_options_destroy(r->dbopts);
	if (r->wo_sync)
		rocksdb_writeoptions_destroy(r->wo_sync);
	if (r->wo_nosync)
		rocksdb_writeoptions_destroy(r->wo_nosync);
	if (r->ro_get)
		rocksdb_readoptions_destroy(r->ro_get);
	free(r->path);
	free(r);
}

static int rdb_open(const struct queue_opts *opts, void **state, char *err, size_t errlen)
{
	struct rdb_q *r = calloc(1, sizeof(*r));
	int rc;

	*state = NULL;
	if (!opts->path || !*opts->path) {
		queue_errf(err, errlen, "queue rocksdb: no path given");
		rc = -EINVAL;
		goto out;
	}
	rc = r ? rdb_make_options(r, opts) : -ENOMEM;
	if (rc == 0 && !(r->path = strdup(opts->path)))
		rc = -ENOMEM;
	if (rc < 0) {
		queue_errf(err, errlen, "queue rocksdb: out of memory");
		goto out;
	}
	if ((rc = rdb_open_db(r, err, errlen)) < 0)
		goto out;
	*state = r;
	r = NULL;
out:
	rdb_close(r);
	return rc;
}

/* ---- write ---- */

/* Translate one batch op into WriteBatch entries. */
static void rdb_add_op(struct rdb_q *r, rocksdb_writebatch_t *wb, const struct queue_batch *b,
		       const struct queue_op *op)
{
	uint8_t skey[QUEUE_SCHED_KEY_LEN];
	const char *id = (const char *)op->id.b;

	switch (op->kind) {
	case QUEUE_OP_PUT:
		rocksdb_writebatch_put_cf(wb, r->cf[CF_BODY], id, QUEUE_ID_LEN, op->body,
					  op->body_len);
		/* fall through */
	case QUEUE_OP_META:
		rocksdb_writebatch_put_cf(wb, r->cf[CF_META], id, QUEUE_ID_LEN,
					  queue_batch_at(b, op->meta_off), op->meta_len);
		break;
	case QUEUE_OP_DELETE:
		rocksdb_writebatch_delete_cf(wb, r->cf[CF_META], id, QUEUE_ID_LEN);
		rocksdb_writebatch_delete_cf(wb, r->cf[CF_BODY], id, QUEUE_ID_LEN);
		break;
	case QUEUE_OP_SCHED_PUT:
		queue_sched_key(skey, op->due_ms, &op->id, op->dest);
		rocksdb_writebatch_put_cf(wb, r->cf[CF_SCHED], (const char *)skey, sizeof(skey),
					  queue_batch_at(b, op->sval_off), op->sval_len);
		break;
	case QUEUE_OP_SCHED_DEL:
		queue_sched_key(skey, op->due_ms, &op->id, op->dest);
		rocksdb_writebatch_delete_cf(wb, r->cf[CF_SCHED], (const char *)skey, sizeof(skey));
		break;
	}
}

static int rdb_write(void *state, const struct queue_batch *b, bool sync, char *err, size_t errlen)
{
	struct rdb_q *r = state;
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	char *rerr = NULL;
	int rc = 0;

	if (!wb) {
		queue_errf(err, errlen, "queue rocksdb: out of memory");
		return -ENOMEM;
	}
	if (!r->db) {
		queue_errf(err, errlen, "%s", rdb_closed);
		rocksdb_writebatch_destroy(wb);
		return -EIO;
	}
	for (size_t i = 0; i < b->nops; i++)
		rdb_add_op(r, wb, b, &b->ops[i]);
	rocksdb_write(r->db, sync ? r->wo_sync : r->wo_nosync, wb, &rerr);
	if (rerr)
		rc = rdb_write_fail(rerr, err, errlen);
	rocksdb_writebatch_destroy(wb);
	return rc;
}

/* ---- read ---- */

/* Read id from CF c; copy it and its length to *out, *len when out is non-NULL. Returns 0, -ENOENT,
 * -ENOMEM or -EIO. */
static int rdb_get_one(struct rdb_q *r, int c, const struct queue_id *id, void **out, size_t *len)
{
	char *rerr = NULL;
	rocksdb_pinnableslice_t *ps;
	const char *v;
	size_t vlen = 0;
	int rc = 0;

	ps = rocksdb_get_pinned_cf(r->db, r->ro_get, r->cf[c], (const char *)id->b, QUEUE_ID_LEN,
				   &rerr);
	if (rerr)
		return rdb_fail(rerr, NULL, 0, "get");
	if (!ps)
		return -ENOENT;
	v = rocksdb_pinnableslice_value(ps, &vlen);
	if (out) {
		*out = malloc(vlen ? vlen : 1);
		if (!*out) {
			rc = -ENOMEM;
			goto out;
		}
		if (vlen)
			memcpy(*out, v, vlen);
		if (len)
			*len = vlen;
	}
out:
	rocksdb_pinnableslice_destroy(ps);
	return rc;
}

static int rdb_get(void *state, const struct queue_id *id, void **meta, size_t *meta_len,
		   void **body, size_t *body_len)
{
	struct rdb_q *r = state;
	int rc = 0;

	if (!r->db)
		return -EIO;
	if (meta || !body)
		rc = rdb_get_one(r, CF_META, id, meta, meta_len);
	if (rc == 0 && body)
		rc = rdb_get_one(r, CF_BODY, id, body, body_len);
	if (rc < 0 && meta) {
		free(*meta);
		*meta = NULL;
	}
	return rc;
}

/* ---- scan ---- */

/* A sched key of another length: written by riptide before destination groups (24 bytes), whose
 * envelopes (version 1) this version cannot read either. Skipped, and said once. */
static void rdb_old_key(size_t klen)
{
	static atomic_bool said;

	if (!atomic_exchange(&said, true))
		fprintf(stderr,
			"riptide: queue: schedule entries of an older spool format (%zu-byte keys) "
			"are skipped; deliver that spool with the riptide that wrote it\n",
			klen);
}

/* Walk an iterator already positioned at the first key. Returns 0 or cb's negative result
 * (> 0 from cb ends the walk with 0), or -EIO for a malformed key or an iterator error. */
static int rdb_walk(rocksdb_iterator_t *it, queue_scan_cb cb, void *arg)
{
	char *rerr = NULL;
	int rc = 0;

	for (; rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const char *k = rocksdb_iter_key(it, &klen);
		const char *v = rocksdb_iter_value(it, &vlen);
		struct queue_id id;
		uint64_t due;
		unsigned dest;

		if (klen != QUEUE_SCHED_KEY_LEN) {
			rdb_old_key(klen);
			continue;
		}
		queue_sched_key_split((const uint8_t *)k, &due, &id, &dest);
		rc = cb(arg, due, &id, dest, v, vlen);
	}
	if (rc != 0)
		return rc < 0 ? rc : 0;
	rocksdb_iter_get_error(it, &rerr);
	return rerr ? rdb_fail(rerr, NULL, 0, "scan") : 0;
}

/* Iterate sched over [from_ms, until_ms] (the upper bound is exclusive in RocksDB, so it is
 * until_ms + 1, or none at UINT64_MAX), calling cb per entry. Returns as rdb_walk, or
 * -ENOMEM. */
static int rdb_iterate(struct rdb_q *r, const rocksdb_snapshot_t *snap, uint64_t from_ms,
		       uint64_t until_ms, queue_scan_cb cb, void *arg)
{
	uint8_t lo[8], hi[8];
	rocksdb_readoptions_t *ro;
	rocksdb_iterator_t *it = NULL;
	int rc = -ENOMEM;

	if (!r->db)
		return -EIO;
	ro = rocksdb_readoptions_create();
	if (!ro)
		goto out;
	queue_be64_put(lo, from_ms);
	rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lo, sizeof(lo));
	if (until_ms != UINT64_MAX) {
		queue_be64_put(hi, until_ms + 1);
		rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, sizeof(hi));
	}
	rocksdb_readoptions_set_fill_cache(ro, 0);
	if (snap)
		rocksdb_readoptions_set_snapshot(ro, snap);
	it = rocksdb_create_iterator_cf(r->db, ro, r->cf[CF_SCHED]);
	if (!it)
		goto out;
	rocksdb_iter_seek(it, (const char *)lo, sizeof(lo));
	rc = rdb_walk(it, cb, arg);
out:
	if (it)
		rocksdb_iter_destroy(it);
	if (ro)
		rocksdb_readoptions_destroy(ro);
	return rc;
}

static int rdb_scan(void *state, uint64_t from_ms, uint64_t until_ms, queue_scan_cb cb, void *arg)
{
	return rdb_iterate(state, NULL, from_ms, until_ms, cb, arg);
}

static void *rdb_snap_new(void *state)
{
	struct rdb_q *r = state;

	return r->db ? (void *)rocksdb_create_snapshot(r->db) : NULL;
}

static void rdb_snap_free(void *state, void *snap)
{
	struct rdb_q *r = state;

	if (r->db)
		rocksdb_release_snapshot(r->db, snap);
}

static int rdb_scan_snap(void *state, const void *snap, uint64_t from_ms, uint64_t until_ms,
			 queue_scan_cb cb, void *arg)
{
	return rdb_iterate(state, snap, from_ms, until_ms, cb, arg);
}

/* Walk the meta iterator from its position: one message (key, value) per call. Returns 0
 * (also when cb stopped with > 0), cb's negative result, or -EIO. */
static int rdb_walk_meta(rocksdb_iterator_t *it, queue_meta_cb cb, void *arg)
{
	char *rerr = NULL;
	int rc = 0;

	for (; rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const char *k = rocksdb_iter_key(it, &klen);
		const char *v = rocksdb_iter_value(it, &vlen);
		struct queue_id id;

		if (klen != QUEUE_ID_LEN)
			return -EIO;
		memcpy(id.b, k, QUEUE_ID_LEN);
		rc = cb(arg, &id, v, vlen);
	}
	if (rc != 0)
		return rc < 0 ? rc : 0;
	rocksdb_iter_get_error(it, &rerr);
	return rerr ? rdb_fail(rerr, NULL, 0, "scan meta") : 0;
}

/* Iterate the meta column family from *from (or the first key) in key order. A RocksDB
 * iterator reads an implicit snapshot taken at its creation and holds one entry at a time;
 * fill_cache off so a listing of the whole queue does not evict the hot blocks. */
static int rdb_scan_meta(void *state, const struct queue_id *from, queue_meta_cb cb, void *arg)
{
	struct rdb_q *r = state;
	rocksdb_readoptions_t *ro;
	rocksdb_iterator_t *it = NULL;
	int rc = -ENOMEM;

	if (!r->db)
		return -EIO;
	ro = rocksdb_readoptions_create();
	if (!ro)
		return -ENOMEM;
	rocksdb_readoptions_set_fill_cache(ro, 0);
	it = rocksdb_create_iterator_cf(r->db, ro, r->cf[CF_META]);
	if (!it)
		goto out;
	if (from)
		rocksdb_iter_seek(it, (const char *)from->b, QUEUE_ID_LEN);
	else
		rocksdb_iter_seek_to_first(it);
	rc = rdb_walk_meta(it, cb, arg);
out:
	if (it)
		rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	return rc;
}

/* Count the keys of the meta column family (one per queued message). */
static int rdb_count(void *state, uint64_t *out)
{
	struct rdb_q *r = state;
	rocksdb_readoptions_t *ro;
	rocksdb_iterator_t *it;
	char *rerr = NULL;

	*out = 0;
	if (!r->db)
		return -EIO;
	ro = rocksdb_readoptions_create();
	if (!ro)
		return -ENOMEM;
	rocksdb_readoptions_set_fill_cache(ro, 0);
	it = rocksdb_create_iterator_cf(r->db, ro, r->cf[CF_META]);
	for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it))
		(*out)++;
	rocksdb_iter_get_error(it, &rerr);
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	return rerr ? rdb_fail(rerr, NULL, 0, "count") : 0;
}

const struct queue_backend_ops queue_rocksdb_ops = {
    .name = "rocksdb",
    .open = rdb_open,
    .close = rdb_close,
    .write = rdb_write,
    .get = rdb_get,
    .scan = rdb_scan,
    .scan_meta = rdb_scan_meta,
    .snap_new = rdb_snap_new,
    .snap_free = rdb_snap_free,
    .scan_snap = rdb_scan_snap,
    .count = rdb_count,
    .recover = rdb_recover,
};
