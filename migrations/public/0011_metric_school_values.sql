-- Whole-school totals per day and element: `metric_values` summed over classes and
-- categories, kept by the rollup pass for the days it recomputes. The county overview reads
-- these (one row per school, day and element) instead of adding up every class of every
-- school on each request.
create table metric_school_values (
    tenant_id   bigint not null references tenants (id) on delete cascade,
    day         date not null,
    element     text not null,
    value       double precision not null,
    primary key (tenant_id, day, element)
);

insert into metric_school_values (tenant_id, day, element, value)
select tenant_id, day, element, sum(value) from metric_values group by 1, 2, 3;
