"""ettin from application code: psycopg 3 with bound parameters and Python lists as text[], and
SQLAlchemy text() — what an ORM's raw-query escape hatch sends. Runs against the test cluster
(PG* environment from scripts/cluster.sh) with the fixture model."""

from __future__ import annotations

import os
import unittest

import psycopg
import sqlalchemy as sa

MODEL = "ettin-test/modular"
QUERY = "free software license"
DOCUMENTS = [
    "The GNU General Public License is a free software license.",
    "Python's argparse module parses command line arguments.",
    None,
    "You may copy and distribute verbatim copies of the program.",
]


def dsn() -> str:
    return f"host={os.environ['PGHOST']} port={os.environ['PGPORT']} user=postgres dbname={os.environ['ETTIN_TEST_DB']}"


class Psycopg(unittest.TestCase):
    def setUp(self):
        self.conn = psycopg.connect(dsn(), autocommit=True)

    def tearDown(self):
        self.conn.close()

    def test_list_of_documents_binds_as_text_array_and_ranks(self):
        rows = self.conn.execute(
            "SELECT idx, score FROM ettin_rerank(%s, %s, %s, %s)", (QUERY, DOCUMENTS, None, MODEL)
        ).fetchall()
        scores = self.conn.execute("SELECT rerank_score(%s, %s::text[], %s)", (QUERY, DOCUMENTS, MODEL)).fetchone()[0]
        self.assertEqual(len(scores), 4)
        self.assertIsNone(scores[2], "a None document gets a NULL score")
        expected = sorted((i + 1 for i, s in enumerate(scores) if s is not None), key=lambda i: -scores[i - 1])
        self.assertEqual([idx for idx, _ in rows], expected)
        for idx, score in rows:
            self.assertAlmostEqual(score, scores[idx - 1], places=5)
        best = DOCUMENTS[rows[0][0] - 1]
        self.assertIn(best, DOCUMENTS)

    def test_single_pair_and_prepared_statement_reuse(self):
        with self.conn.cursor() as cur:
            values = [
                cur.execute("SELECT rerank_score(%s, %s, %s)", (QUERY, d, MODEL), prepare=True).fetchone()[0]
                for d in DOCUMENTS
            ]
        self.assertIsNone(values[2])
        self.assertEqual(len([v for v in values if v is not None]), 3)

    def calls(self) -> int:
        return self.conn.execute("SELECT calls FROM ettin_models() WHERE name = %s", (MODEL,)).fetchone()[0]

    def test_one_execution_scores_once_with_bound_parameters(self):
        # Extended protocol: Postgres plans each of the first executions for the bound values
        # (custom plans), and the row estimate of unnest() evaluates rerank_score at plan time;
        # ettin must not score twice. 7 executions of one prepared statement: 7 calls, not 12.
        self.conn.execute("SELECT rerank_score('warm', 'up', %s)", (MODEL,))
        zip_pattern = (
            "WITH bundle AS (SELECT %s::int[] AS ids, %s::text[] AS bodies) "
            "SELECT b.ids[s.ord], s.score FROM bundle b, "
            "unnest(rerank_score(%s, b.bodies, %s)) WITH ORDINALITY AS s(score, ord) ORDER BY s.score DESC"
        )
        for statement, args in [
            ("SELECT count(*) FROM unnest(rerank_score(%s, %s::text[], %s))", (QUERY, DOCUMENTS, MODEL)),
            (zip_pattern, ([1, 2, 3, 4], DOCUMENTS, QUERY, MODEL)),
        ]:
            before = self.calls()
            for _ in range(7):
                self.conn.execute(statement, args, prepare=True).fetchall()
            self.assertEqual(self.calls() - before, 7, statement)

    def test_errors_arrive_as_sqlstate(self):
        with self.assertRaises(psycopg.errors.InvalidParameterValue) as ctx:
            self.conn.execute("SELECT rerank_score(%s, %s, %s)", (QUERY, "doc", "../etc"))
        self.assertIn("'..'", str(ctx.exception))
        self.assertTrue(ctx.exception.diag.message_hint)
        with self.assertRaises(psycopg.errors.UndefinedFile):
            self.conn.execute("SELECT rerank_score(%s, %s, %s)", (QUERY, "doc", "no/such-model"))
        # the connection is still usable
        self.assertIsNotNone(self.conn.execute("SELECT rerank_score(%s, %s, %s)", (QUERY, "doc", MODEL)).fetchone()[0])


class SqlAlchemy(unittest.TestCase):
    def setUp(self):
        url = sa.engine.URL.create(
            "postgresql+psycopg",
            username="postgres",
            host=os.environ["PGHOST"],
            port=int(os.environ["PGPORT"]),
            database=os.environ["ETTIN_TEST_DB"],
        )
        self.engine = sa.create_engine(url)

    def tearDown(self):
        self.engine.dispose()

    def test_text_query_with_bound_list_reads_idx_and_score(self):
        stmt = sa.text("SELECT idx, score FROM ettin_rerank(:query, :documents, :top_k, :model)").bindparams(
            sa.bindparam("documents", type_=sa.ARRAY(sa.Text))
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt, {"query": QUERY, "documents": DOCUMENTS, "top_k": 2, "model": MODEL}).all()
            scores = conn.execute(
                sa.text("SELECT rerank_score(:query, CAST(:documents AS text[]), :model)"),
                {"query": QUERY, "documents": DOCUMENTS, "model": MODEL},
            ).scalar_one()
        self.assertEqual(len(rows), 2)
        ranked = sorted((i + 1 for i, s in enumerate(scores) if s is not None), key=lambda i: -scores[i - 1])
        self.assertEqual([r.idx for r in rows], ranked[:2])
        self.assertAlmostEqual(rows[0].score, scores[rows[0].idx - 1], places=5)


if __name__ == "__main__":
    unittest.main(verbosity=2)
