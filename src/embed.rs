//! The embedding functions: `ettin_embed` (one text, or an array as rows) and the
//! `ettin_embed_table` backfill procedure. Settings in, engine call, vectors out.

use std::cell::RefCell;

use ettin_engine::memo::{CallKeyDigest, CallMemo};
use ettin_engine::shared::{self, EmbedRequest};
use ettin_engine::EmbedOptions;
use pgrx::prelude::*;

use pgrx::{pg_sys, IntoDatum};

use crate::call_memo::{call_key_for, local_transaction_id};
use crate::error::OrRaise;
use crate::guc;
use crate::models::{model, resolve_model, shared_inference, Task};
use crate::paths::inference_socket;

fn embed_options(prompt_name: Option<&str>) -> EmbedOptions {
    EmbedOptions {
        prompt_name: prompt_name.map(str::to_owned),
        truncate_dim: guc::EMBED_DIM.get().max(0) as usize,
        limits: guc::batch_limits(),
        max_total_tokens: guc::MAX_TOKENS_PER_CALL.get() as usize,
    }
}

thread_local! {
    /// Vectors of this transaction's last single-text calls: as for scores (rerank.rs), a statement
    /// that evaluates the same constant call at plan time and in the executor — or once per row,
    /// under a sort plan of `ORDER BY embedding <=> ettin_embed($1)::vector` — embeds once. The
    /// array form returns rows, which Postgres never evaluates at plan time: it is not kept.
    static RECENT_EMBEDS: RefCell<CallMemo<Option<Vec<f32>>>> =
        const { RefCell::new(CallMemo::new(4)) };
}

/// The vector of one text; an identical call earlier in the transaction gives its vector.
fn embed_one(input: &str, model_name: Option<&str>, prompt_name: Option<&str>) -> Option<Vec<f32>> {
    let options = embed_options(prompt_name);
    let scope = local_transaction_id();
    let mut key = call_key_for(Task::Embed, model_name, &options);
    key.add(input.as_bytes());
    let key: CallKeyDigest = key.into();
    if let Some(vector) = RECENT_EMBEDS.with(|memo| memo.borrow_mut().get(scope, &key)) {
        return vector;
    }
    let vector = embed_inputs(&[Some(input)], model_name, &options)
        .pop()
        .flatten();
    RECENT_EMBEDS.with(|memo| memo.borrow_mut().put(scope, key, vector.clone()));
    vector
}

/// One vector per non-NULL input (NULL for NULL inputs), in input order.
fn embed_inputs(
    inputs: &[Option<&str>],
    model_name: Option<&str>,
    options: &EmbedOptions,
) -> Vec<Option<Vec<f32>>> {
    let texts: Vec<&str> = inputs.iter().flatten().copied().collect();
    let mut check_cancel = || {
        pgrx::check_for_interrupts!();
    };
    let vectors = if shared_inference() {
        let (name, dir) = resolve_model(model_name, Task::Embed);
        let request = EmbedRequest {
            name,
            dir,
            onnx_file: Task::Embed.onnx_file(),
            options: options.clone(),
            texts: texts.iter().map(|t| (*t).to_owned()).collect(),
        };
        shared::embed(&inference_socket(), request, &mut check_cancel)
    } else {
        model(model_name, Task::Embed).embed(&texts, options, &mut check_cancel)
    };
    let mut vectors = vectors.or_raise().into_iter();
    inputs
        .iter()
        .map(|i| i.and_then(|_| vectors.next()))
        .collect()
}

/// A vector returned as `real[]`, built in one `construct_array` call: pgrx's `Vec<f32>` adds
/// elements one by one, which took as long as embedding a StaticEmbedding text.
pub struct Embedding(Vec<f32>);

pgrx::impl_sql_translatable!(Embedding, "real[]");

impl IntoDatum for Embedding {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        // float4 is passed by value: a Datum holds its bits (Float4GetDatum).
        let mut datums: Vec<pg_sys::Datum> = self
            .0
            .iter()
            .map(|v| pg_sys::Datum::from(v.to_bits() as usize))
            .collect();
        // SAFETY: `datums` holds len float4 Datums; construct_array copies them into a palloc'd
        // array in the current memory context, with float4's length, by-value and int alignment.
        let array = unsafe {
            pg_sys::construct_array(
                datums.as_mut_ptr(),
                datums.len() as i32,
                pg_sys::FLOAT4OID,
                4,
                true,
                pg_sys::TYPALIGN_INT as std::ffi::c_char,
            )
        };
        Some(pg_sys::Datum::from(array))
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::FLOAT4ARRAYOID
    }
}

// SAFETY: the Datum comes from into_datum above, as pgrx's own BoxRet impls do it.
unsafe impl pgrx::callconv::BoxRet for Embedding {
    unsafe fn box_into<'fcx>(
        self,
        fcinfo: &mut pgrx::callconv::FcInfo<'fcx>,
    ) -> pgrx::datum::Datum<'fcx> {
        match self.into_datum() {
            Some(datum) => unsafe { fcinfo.return_raw_datum(datum) },
            None => fcinfo.return_null(),
        }
    }
}

/// The embedding of one text (`SentenceTransformer.encode(text, prompt_name=...)`, truncated to
/// ettin.embed_dim); NULL text gives NULL. Casts to pgvector's `vector`.
#[pg_extern(stable, parallel_safe, name = "ettin_embed")]
fn ettin_embed_one(
    input: Option<&str>,
    model: default!(Option<&str>, "NULL"),
    prompt_name: default!(Option<&str>, "NULL"),
) -> Option<Embedding> {
    embed_one(input?, model, prompt_name).map(Embedding)
}

/// A row per non-NULL input: its 1-based position and embedding; batched like reranking.
#[pg_extern(stable, parallel_safe, name = "ettin_embed")]
fn ettin_embed_many(
    inputs: Option<Array<&str>>,
    model: default!(Option<&str>, "NULL"),
    prompt_name: default!(Option<&str>, "NULL"),
) -> TableIterator<'static, (name!(idx, i32), name!(embedding, Embedding))> {
    let Some(inputs) = inputs else {
        return TableIterator::new(Vec::new());
    };
    let inputs: Vec<Option<&str>> = inputs.iter().collect();
    let rows: Vec<(i32, Embedding)> = embed_inputs(&inputs, model, &embed_options(prompt_name))
        .into_iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i as i32 + 1, Embedding(v))))
        .collect();
    TableIterator::new(rows)
}

// The backfill is a PL/pgSQL procedure: only a procedure called outside a transaction block
// may COMMIT between batches, and PL/pgSQL gives that with the caller's rights and no C-level
// transaction handling. Rows are picked with FOR UPDATE SKIP LOCKED, so several sessions may
// backfill one table at once, and a re-run continues where a cancelled one stopped (and picks up
// rows written meanwhile behind the point a run had reached).
pgrx::extension_sql!(
    r#"
CREATE PROCEDURE ettin_embed_table(
    tbl regclass, source_column name, target_column name,
    model text DEFAULT NULL, prompt_name text DEFAULT NULL, batch_size int DEFAULT 256)
LANGUAGE plpgsql AS $proc$
DECLARE
  total bigint;
  done bigint := 0;
  n bigint;
  started timestamptz := clock_timestamp();
  after tid := '(0,0)';
  secs float8;
  rate float8;
BEGIN
  IF tbl IS NULL OR source_column IS NULL OR target_column IS NULL THEN
    RAISE EXCEPTION 'ettin_embed_table: tbl, source_column and target_column must not be NULL'
      USING ERRCODE = '22004', HINT = 'CALL ettin_embed_table(''passages'', ''body'', ''embedding'')';
  END IF;
  IF batch_size IS NULL OR batch_size < 1 THEN
    RAISE EXCEPTION 'ettin_embed_table: batch_size must be at least 1, not %', coalesce(batch_size::text, 'NULL')
      USING ERRCODE = '22023', HINT = 'the default, 256, suits most models';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = tbl AND attname = source_column AND attnum > 0 AND NOT attisdropped) THEN
    RAISE EXCEPTION 'ettin_embed_table: table % has no column %', tbl, quote_ident(source_column)
      USING ERRCODE = '42703', HINT = 'source_column names the text column to embed';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = tbl AND attname = target_column AND attnum > 0 AND NOT attisdropped) THEN
    RAISE EXCEPTION 'ettin_embed_table: table % has no column %', tbl, quote_ident(target_column)
      USING ERRCODE = '42703', HINT = 'add it first, e.g. ALTER TABLE ... ADD COLUMN embedding vector(384)';
  END IF;
  IF NOT has_column_privilege(tbl, target_column, 'UPDATE') OR NOT has_column_privilege(tbl, source_column, 'SELECT') THEN
    RAISE EXCEPTION 'ettin_embed_table: permission denied to update %.% from %.%', tbl, quote_ident(target_column), tbl, quote_ident(source_column)
      USING ERRCODE = '42501', HINT = 'the backfill runs with your rights: it needs SELECT on the source column and UPDATE on the target column';
  END IF;
  EXECUTE format('SELECT count(*) FROM %s WHERE %I IS NULL AND %I IS NOT NULL', tbl, target_column, source_column)
    INTO total;
  RAISE NOTICE 'ettin_embed_table: % rows of % to embed into %', total, tbl, quote_ident(target_column);
  LOOP
    -- Each batch starts where the last one ended in the heap (a TID range scan): rows already
    -- embedded are not read again, so the last batch costs what the first did.
    EXECUTE format($q$
      WITH batch AS (
        SELECT ctid AS tid, %1$I::text AS src FROM %2$s
        WHERE ctid > $3 AND %3$I IS NULL AND %1$I IS NOT NULL LIMIT %4$s FOR UPDATE SKIP LOCKED),
      bundle AS (SELECT array_agg(tid) AS tids, array_agg(src) AS srcs FROM batch),
      embedded AS (
        SELECT bundle.tids[e.idx] AS tid, e.embedding
        FROM bundle, @extschema@.ettin_embed(bundle.srcs, $1, $2) AS e),
      written AS (
        UPDATE %2$s AS t SET %3$I = embedded.embedding FROM embedded WHERE t.ctid = embedded.tid
        RETURNING 1)
      SELECT (SELECT count(*) FROM written), (SELECT tid FROM batch ORDER BY tid DESC LIMIT 1)
      $q$, source_column, tbl, target_column, batch_size)
      INTO n, after USING model, prompt_name, after;
    EXIT WHEN after IS NULL;
    done := done + n;
    COMMIT;
    secs := greatest(extract(epoch FROM clock_timestamp() - started), 1e-6);
    rate := done / secs;
    RAISE NOTICE 'ettin_embed_table: % / % rows (% rows/s, % s left)',
      done, total, round(rate::numeric, 1), round((greatest(total - done, 0) / rate)::numeric, 1);
  END LOOP;
  RAISE NOTICE 'ettin_embed_table: done, % rows in % s', done,
    round(extract(epoch FROM clock_timestamp() - started)::numeric, 1);
END
$proc$;
COMMENT ON PROCEDURE ettin_embed_table(regclass, name, name, text, text, int) IS
  'Fill target_column with ettin_embed(source_column) where it is NULL, committing every batch_size rows; re-run to continue.';
"#,
    name = "ettin_embed_table",
    requires = [ettin_embed_many],
);
