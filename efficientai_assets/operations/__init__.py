"""Operations on a home: ``health`` (is every store and server up), ``backup`` (one verified
archive of every store, consistent while runs go on) and ``restore`` (into an empty home only,
then checked). Each is a ``python -m efficientai_assets.operations.<command>`` and a make target.

Nothing in the Dagster code location imports this package.
"""
