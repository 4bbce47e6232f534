{% macro cxloop_measures_part(measures, relation, date_col, dimension, segment_col, present) %}
    {#- One day x segment aggregate with the measures in `present`; every other measure is a typed null, so
        parts can be stacked with `union all` and summed per day and segment. -#}
    select
        {{ date_col }} as date,
        cast('{{ dimension }}' as {{ dbt.type_string() }}) as dimension,
        cast({{ segment_col }} as {{ dbt.type_string() }}) as segment,
        {%- for m in measures %}
        {% if m in present %}cast({{ present[m] }} as double){% else %}cast(null as double){% endif %} as {{ m }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ relation }}
    group by {{ date_col }}{% if segment_col != "'all'" %}, {{ segment_col }}{% endif %}
{% endmacro %}
