{#
    `numerator / denominator` rounded to `digits` decimals, null when the denominator is 0, as DuckDB computes
    it: the quotient of two decimals is a double, and `round` rounds that double's exact binary value half away
    from zero (244.105 is stored as 244.10499... and becomes 244.10; 244.125 is exact and becomes 244.13).
    Spark would divide the decimals exactly, and its `round` of a double rounds the shortest decimal that prints
    it (244.11). Its implementation divides in doubles too and recovers the rounding error of `q * 10^digits`
    exactly (Dekker's product with a Veltkamp split of q; 10^digits needs no split), so a product that lands on
    a half is rounded by the side the exact value lies on.
#}
{% macro cxloop_round_ratio(numerator, denominator, digits) %}
    {{ return(adapter.dispatch('cxloop_round_ratio', 'cxloop')(numerator, denominator, digits)) }}
{% endmacro %}

{% macro default__cxloop_round_ratio(numerator, denominator, digits) %}
    round({{ numerator }} / nullif({{ denominator }}, 0), {{ digits }})
{% endmacro %}

{% macro spark__cxloop_round_ratio(numerator, denominator, digits) %}
    {%- set scale = 'cast(' ~ (10 ** digits) ~ ' as double)' -%}
    {%- set q = '(cast(' ~ numerator ~ ' as double) / nullif(cast(' ~ denominator ~ ' as double), 0))' -%}
    {%- set a = 'abs' ~ q -%}
    {%- set p = '(' ~ a ~ ' * ' ~ scale ~ ')' -%}
    {%- set c = '(cast(134217729 as double) * ' ~ a ~ ')' -%}
    {%- set a_high = '(' ~ c ~ ' - (' ~ c ~ ' - ' ~ a ~ '))' -%}
    {%- set a_low = '(' ~ a ~ ' - ' ~ a_high ~ ')' -%}
    {%- set error = '((' ~ a_high ~ ' * ' ~ scale ~ ' - ' ~ p ~ ') + ' ~ a_low ~ ' * ' ~ scale ~ ')' -%}
    {%- set fraction = '(' ~ p ~ ' - floor(' ~ p ~ '))' -%}
    (signum{{ q }} * (floor({{ p }})
        + case when {{ fraction }} > 0.5 or ({{ fraction }} = 0.5 and {{ error }} >= 0) then 1 else 0 end)
        / {{ scale }})
{% endmacro %}
